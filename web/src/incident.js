// One incident: where (each shot with its 95 % ellipse), when (the shot
// sequence), what (class, confidence, rounds, shooters), the evidence (the
// sensors used with their residuals, each sensor's audio), the review actions
// and the full change history.
import { L, text, baseMap, fit, ellipse, sensorMarker, CLASS_COLOURS } from './map.js';
import { api, h, svg, fmtTime, fmt, className, table, failure } from './util.js';
import { clipPanel, releaseClips } from './audio.js';

const ACTIONS = {
  confirm: 'Confirm as published',
  reclassify: 'Reclassify',
  dismiss: 'Dismiss (not gunfire)',
  adjust: 'Adjust rounds or shooters',
  relocate: 'Relocate',
};

function timeline(shots) {
  const times = shots.map((s) => Date.parse(s.t_utc));
  const t0 = Math.min(...times);
  const span = Math.max(1, Math.max(...times) - t0);
  const width = 640;
  const pad = 20;
  const x = (t) => pad + ((t - t0) / span) * (width - 2 * pad);
  const marks = shots.map((s, i) => {
    const colour = CLASS_COLOURS[s.class] || '#546e7a';
    return svg('g', {},
      svg('line', { x1: x(times[i]), x2: x(times[i]), y1: 18, y2: 46, stroke: colour, 'stroke-width': 3 }),
      svg('text', { x: x(times[i]), y: 14, 'text-anchor': 'middle', 'font-size': 10 }, String(i + 1)));
  });
  const gaps = [];
  for (let i = 1; i < shots.length; i += 1) {
    const mid = (x(times[i - 1]) + x(times[i])) / 2;
    if (x(times[i]) - x(times[i - 1]) > 44) {
      gaps.push(svg('text', { x: mid, y: 60, 'text-anchor': 'middle', 'font-size': 10, fill: '#555' }, `${((times[i] - times[i - 1]) / 1000).toFixed(2)} s`));
    }
  }
  return svg('svg', { viewBox: `0 0 ${width} 66`, class: 'timeline', role: 'img', 'aria-label': 'shot sequence' },
    svg('line', { x1: pad, x2: width - pad, y1: 46, y2: 46, stroke: '#999' }), marks, gaps);
}

function summary(doc, ctx) {
  const r = doc.review;
  const links = [
    h('a', { href: `/v1/incidents/${encodeURIComponent(doc.id)}/cap` }, 'CAP'),
    h('a', { href: `/v1/incidents/${encodeURIComponent(doc.id)}/geojson` }, 'GeoJSON'),
  ];
  if (ctx.may('evidence') && ctx.may('audio')) {
    links.push(h('a', { href: `/v1/incidents/${encodeURIComponent(doc.id)}/report?format=pdf` }, 'report (PDF)'));
    links.push(h('a', { href: `/v1/incidents/${encodeURIComponent(doc.id)}/report?format=html` }, 'report (HTML)'));
  }
  return h('section', { class: 'card summary' },
    h('h1', {}, h('span', { class: `badge ${doc.class}` }, className(doc.class)), ` ${doc.rounds} round${doc.rounds === 1 ? '' : 's'}`),
    h('dl', {},
      h('dt', {}, 'Where'), h('dd', { id: 'where' }, doc.address ? [`${doc.address} (${fmt(doc.address_distance_m, 0)} m away)`, h('br')] : '', `${fmt(doc.lat, 6)}, ${fmt(doc.lon, 6)} ± ${fmt(doc.err95_m, 1)} m (95 %)`),
      h('dt', {}, 'When'), h('dd', {}, fmtTime(doc.first_utc, true), doc.last_utc !== doc.first_utc ? ` – ${fmtTime(doc.last_utc, true)}` : ''),
      h('dt', {}, 'Rounds'), h('dd', { id: 'rounds' }, String(doc.rounds), doc.automatic ? ' (automatic fire)' : ''),
      h('dt', {}, 'Shooters'), h('dd', { id: 'shooters' }, String(doc.shooters)),
      h('dt', {}, 'Class'), h('dd', { id: 'class' }, `${className(doc.class)}, confidence ${fmt(doc.confidence * 100, 0)} %`),
      h('dt', {}, 'Review'), h('dd', { id: 'review-status' }, r ? `${r.status} by ${r.by.replace(/^user:/, '')} at ${fmtTime(r.at_utc)}: “${r.reason}”` : 'not reviewed yet'),
      r && r.machine ? [h('dt', {}, 'Machine result'), h('dd', {}, `${className(r.machine.class)}, ${r.machine.rounds} round(s), ${r.machine.shooters} shooter(s), ${fmt(r.machine.lat, 6)}, ${fmt(r.machine.lon, 6)}`)] : [],
      h('dt', {}, 'Version'), h('dd', {}, `v${doc.version}, ${doc.software}`)),
    h('p', { class: 'links' }, links.flatMap((a, i) => (i ? [' · ', a] : [a]))));
}

function shotsTable(doc, select) {
  const times = doc.shots.map((s) => Date.parse(s.t_utc));
  return table(['#', 'time', 'interval', '±95 %', 'sensors', 'class', 'confidence'],
    doc.shots.map((s, i) => h('tr', { class: 'clickable', onclick: () => select(i), dataset: { shot: i } },
      h('td', {}, String(i + 1)),
      h('td', {}, fmtTime(s.t_utc, true)),
      h('td', {}, i ? `${((times[i] - times[i - 1]) / 1000).toFixed(3)} s` : ''),
      h('td', {}, `${fmt(s.err95_m, 1)} m`),
      h('td', {}, s.sensors.length ? String(s.sensors.length) : '–'),
      h('td', {}, className(s.class)),
      h('td', {}, `${fmt(s.confidence * 100, 0)} %`))), { id: 'shots' });
}

function reviewForm(doc, onDone) {
  const action = h('select', { name: 'action', id: 'review-action' }, Object.entries(ACTIONS).map(([k, v]) => h('option', { value: k }, v)));
  const cls = h('select', { name: 'class' }, ['gunfire', 'probable_gunfire', 'fireworks', 'other'].map((c) => h('option', { value: c }, className(c))));
  const rounds = h('input', { type: 'number', min: 0, max: 1000, name: 'rounds', value: doc.rounds });
  const shooters = h('input', { type: 'number', min: 0, max: 20, name: 'shooters', value: doc.shooters });
  const lat = h('input', { type: 'number', step: 'any', name: 'lat', value: doc.lat.toFixed(6) });
  const lon = h('input', { type: 'number', step: 'any', name: 'lon', value: doc.lon.toFixed(6) });
  const reason = h('textarea', { name: 'reason', id: 'review-reason', rows: 2, required: true, maxlength: 2000, placeholder: 'Why (required; kept in the history)' });
  const why = h('p', { class: 'error', role: 'alert' });
  const fields = {
    reclassify: [h('label', {}, 'Class ', cls)],
    adjust: [h('label', {}, 'Rounds ', rounds), h('label', {}, 'Shooters ', shooters)],
    relocate: [h('label', {}, 'Latitude ', lat), h('label', {}, 'Longitude ', lon), h('span', { class: 'muted' }, ' (or click the map)')],
  };
  const extra = h('div', { class: 'row' });
  const showFields = () => extra.replaceChildren(...(fields[action.value] || []));
  action.addEventListener('change', showFields);
  showFields();
  const form = h('form', { class: 'card review', id: 'review-form' },
    h('h2', {}, 'Review'),
    h('p', { class: 'muted' }, 'The alert has gone out already; a decision makes a new version, sent to every subscriber, with the machine result kept beside it.'),
    h('div', { class: 'row' }, action), extra, reason,
    h('button', { type: 'submit' }, 'Record decision'), why);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const body = { action: action.value, reason: reason.value };
    if (action.value === 'reclassify') body.class = cls.value;
    if (action.value === 'adjust') {
      body.rounds = Number(rounds.value);
      body.shooters = Number(shooters.value);
    }
    if (action.value === 'relocate') {
      body.lat = Number(lat.value);
      body.lon = Number(lon.value);
    }
    try {
      await api(`/v1/incidents/${encodeURIComponent(doc.id)}/review`, { method: 'POST', body });
      onDone();
    } catch (e) {
      why.textContent = e.message;
    }
  });
  form.setPlace = (ll) => {
    action.value = 'relocate';
    showFields();
    lat.value = ll.lat.toFixed(6);
    lon.value = ll.lng.toFixed(6);
  };
  return form;
}

/** Nearest sensors' clips first; the rest only when asked for (every clip fetched is a logged read of audio). */
const CLIPS_SHOWN = 4;
function audioSection(makers) {
  if (!makers.length) return h('p', { class: 'muted' }, 'No clips stored for this shot.');
  const more = makers.slice(CLIPS_SHOWN);
  const rest = h('div', { class: 'clips' });
  const details = more.length ? h('details', { id: 'more-clips' }, h('summary', {}, `${more.length} more sensors' clips`), rest) : '';
  if (details) {
    details.addEventListener('toggle', () => {
      if (details.open && !rest.children.length) rest.append(...more.map((m) => m()));
    });
  }
  return h('div', {}, h('div', { class: 'clips' }, makers.slice(0, CLIPS_SHOWN).map((m) => m())), details);
}

/** Newest first; the earliest beyond a screenful folded away. */
const HISTORY_SHOWN = 12;
function historyList(entries) {
  const newest = [...entries].reverse();
  const row = (e) => h('tr', {},
    h('td', {}, fmtTime(e.created_utc, true)),
    h('td', {}, e.actor),
    h('td', {}, e.action),
    h('td', {}, e.reason || ''),
    h('td', {}, `v${e.version}`),
    h('td', { class: 'mono', title: e.hash }, e.hash.slice(0, 12)));
  const head = ['when', 'who', 'what', 'reason', 'version', 'hash'];
  const shown = table(head, newest.slice(0, HISTORY_SHOWN).map(row), { id: 'history' });
  if (newest.length <= HISTORY_SHOWN) return shown;
  return h('div', {}, shown, h('details', {}, h('summary', {}, `${newest.length - HISTORY_SHOWN} earlier changes`),
    table(head, newest.slice(HISTORY_SHOWN).map(row))));
}

const FOUND = { casings: 'casings', gun_recovered: 'gun recovered', arrest: 'arrest', victim_aided: 'victim aided', no_evidence: 'no evidence' };

/** What officers found: the recorded outcomes, newest last, and a form for
 * roles that may record one (a correction is a new entry; the latest counts). */
async function outcomesSection(box, path, ctx) {
  let list;
  try {
    list = (await api(`${path}/outcomes`)).outcomes;
  } catch (e) {
    box.replaceChildren(h('h2', {}, 'Outcome'), failure(e));
    return;
  }
  if (!ctx.alive()) return;
  const items = list.length
    ? h('ol', { id: 'outcomes-list' }, list.map((o) => h('li', {},
      `${o.found.map((f) => FOUND[f] || f).join(', ')}${o.officer_minutes !== null ? `, ${o.officer_minutes} officer-minutes` : ''} — ${o.by.replace(/^(user|token):/, '')}, ${fmtTime(o.recorded_utc)}`,
      o.note ? h('div', { class: 'muted' }, o.note) : '')))
    : h('p', { class: 'muted' }, 'No outcome recorded.');
  let form = '';
  if (ctx.may('outcomes')) {
    const boxes = Object.entries(FOUND).map(([k, label]) => h('label', {}, h('input', { type: 'checkbox', name: 'found', value: k }), ` ${label}`));
    const minutes = h('input', { type: 'number', id: 'outcome-minutes', min: 0, max: 10080, step: 1, placeholder: 'minutes' });
    const note = h('input', { id: 'outcome-note', maxlength: 2000, placeholder: 'note (optional)' });
    const why = h('p', { class: 'error', role: 'alert' });
    form = h('form', { id: 'outcome-form' }, h('div', { class: 'row' }, boxes), h('label', {}, 'Officer time ', minutes), note,
      h('button', { type: 'submit' }, list.length ? 'Record a correction' : 'Record outcome'), why);
    form.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const found = [...form.querySelectorAll('input[name=found]:checked')].map((i) => i.value);
      const body = { found };
      if (minutes.value !== '') body.officer_minutes = Number(minutes.value);
      if (note.value.trim()) body.note = note.value.trim();
      try {
        await api(`${path}/outcome`, { method: 'POST', body });
        await outcomesSection(box, path, ctx);
      } catch (e) {
        why.textContent = e.message;
      }
    });
  }
  box.replaceChildren(h('h2', {}, 'Outcome'), items, form);
}

export async function incidentPage(root, id, ctx) {
  const path = `/v1/incidents/${encodeURIComponent(id)}`;
  const doc = await api(path);
  const sensors = ctx.may('sensors') ? (await api('/v1/sensors')).sensors : [];
  // Only clips that exist are fetched (each fetch is a logged read of audio).
  const clips = ctx.may('audio') ? new Set((await api(`${path}/clips`)).clips) : new Set();
  if (!ctx.alive()) return;
  ctx.onCleanup(releaseClips);
  const byId = new Map(sensors.map((s) => [s.id, s]));
  const mapEl = h('div', { class: 'map', id: 'incident-map' });
  const evidence = h('section', { class: 'card', id: 'evidence' });
  const historyBox = h('section', { class: 'card', id: 'history-box' });
  const outcomeBox = h('section', { class: 'card', id: 'outcome-box' });
  let form = null;
  root.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: ctx.may('live') ? '#/' : '#/analytics' }, '← back'), ` incident ${doc.id}`),
    h('div', { class: 'split' },
      h('div', {}, mapEl, doc.shots.length ? h('section', { class: 'card' }, h('h2', {}, 'Shot sequence'), timeline(doc.shots), shotsTable(doc, (i) => select(i))) : ''),
      h('div', { class: 'side' }, summary(doc, ctx),
        ctx.may('review') ? (form = reviewForm(doc, ctx.reload)) : '', outcomeBox)),
    evidence, historyBox);

  const map = baseMap(mapEl, ctx.settings, ctx);
  const layers = L.layerGroup().addTo(map);
  const points = [];
  for (const [i, s] of doc.shots.entries()) {
    const colour = CLASS_COLOURS[s.class] || '#546e7a';
    L.layerGroup([
      ellipse(s, { color: colour }),
      L.circleMarker([s.lat, s.lon], { radius: 5, color: '#fff', weight: 1.5, fillColor: colour, fillOpacity: 1 }).bindTooltip(text(`shot ${i + 1}: ±${fmt(s.err95_m, 1)} m`)),
    ]).addTo(layers);
    points.push([s.lat, s.lon]);
  }
  if (doc.review && doc.review.lat !== undefined && doc.review.lat !== null) {
    L.circleMarker([doc.lat, doc.lon], { radius: 8, color: '#000', weight: 2, fill: false }).bindTooltip(text('place given by review')).addTo(map);
  }
  const rays = L.layerGroup().addTo(map);
  if (form) map.on('click', (e) => form.setPlace(e.latlng));

  function select(i) {
    const shot = doc.shots[i];
    for (const tr of root.querySelectorAll('#shots tr[data-shot]')) tr.classList.toggle('selected', Number(tr.dataset.shot) === i);
    rays.clearLayers();
    const rows = [];
    const panels = [];
    const arrivals = [...(shot.arrivals || [])].sort((x, y) => x.range_m - y.range_m);
    for (const a of arrivals) {
      const s = byId.get(a.sensor);
      if (s) {
        L.polyline([[shot.lat, shot.lon], [s.lat, s.lon]], { color: '#1565c0', weight: 1, opacity: 0.6, interactive: false }).addTo(rays);
        sensorMarker(s, { title: `${s.id}: residual ${fmt(a.residual_ms, 2)} ms` }).addTo(rays);
      }
      rows.push(h('tr', {},
        h('td', {}, a.sensor), h('td', { class: 'mono' }, a.pulse), h('td', {}, fmtTime(a.t_utc, true)),
        h('td', { class: Math.abs(a.residual_ms) > 10 ? 'warn' : '' }, fmt(a.residual_ms, 2)), h('td', {}, fmt(a.range_m, 0))));
      if (clips.has(a.pulse)) {
        // Arrivals name pulses SENSOR/ID; the clip route takes the sensor's own ID.
        const own = a.pulse.startsWith(`${a.sensor}/`) ? a.pulse.slice(a.sensor.length + 1) : a.pulse;
        const url = `/v1/pulses/${encodeURIComponent(a.sensor)}/${encodeURIComponent(own)}/clip`;
        panels.push(() => clipPanel(url, `${a.sensor}, ${fmt(a.range_m, 0)} m`, { leadS: 1 }));
      }
    }
    evidence.replaceChildren(
      h('h2', {}, `Shot ${i + 1}: sensors used and residuals`),
      ctx.may('evidence') || rows.length
        ? table(['sensor', 'pulse', 'arrival', 'residual (ms)', 'range (m)'], rows, { id: 'arrivals' })
        : h('p', { class: 'muted' }, 'Your role does not see the evidence.'),
      ctx.may('audio') ? h('h2', {}, 'Audio') : '',
      ctx.may('audio') ? audioSection(panels) : '');
    // The place first: an officer needs the block, not the whole network
    // (zoom out for the sensors and their rays).
    fit(map, points, 18);
  }
  if (doc.shots.length) select(0);
  else fit(map, [[doc.lat, doc.lon]]);
  await outcomesSection(outcomeBox, path, ctx);

  if (ctx.may('evidence')) {
    try {
      const { history } = await api(`${path}/history`);
      if (!ctx.alive()) return;
      historyBox.replaceChildren(h('h2', {}, 'Change history'),
        h('p', { class: 'muted' }, 'Append-only and hash-chained: each entry holds the hash of the one before.'), historyList(history));
    } catch (e) {
      historyBox.replaceChildren(failure(e));
    }
  } else {
    historyBox.remove();
  }
}
