// The live view: the map and the recent incidents, with new alerts arriving
// over the server's SSE feed within a second of publication, with a sound.
import { L, text, baseMap, fit, hull, sensorMarker, CLASS_COLOURS, ellipse } from './map.js';
import { api, h, query, fmtTime, fmt, className, failure } from './util.js';

/** The audible cue: short tones from Web Audio (no audio file to fetch). */
class Cue {
  constructor() {
    this.ctx = null;
    this.enabled = localStorage.getItem('shotfix.sound') !== 'off';
    this.count = 0;
  }

  /** Browsers start audio only after a gesture: call from a click. */
  unlock() {
    if (!this.ctx) this.ctx = new AudioContext();
    if (this.ctx.state === 'suspended') this.ctx.resume();
  }

  play(kind) {
    this.count += 1;
    document.body.dataset.cues = String(this.count);
    if (!this.enabled) return;
    if (!this.ctx) {
      try { this.ctx = new AudioContext(); } catch { return; }
    }
    const tones = kind === 'alert' ? [880, 660, 880] : [660];
    let t = this.ctx.currentTime + 0.02;
    for (const f of tones) {
      const osc = this.ctx.createOscillator();
      const gain = this.ctx.createGain();
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.3, t + 0.01);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.16);
      osc.connect(gain).connect(this.ctx.destination);
      osc.start(t);
      osc.stop(t + 0.18);
      t += 0.2;
    }
  }
}

const cue = new Cue();
// Browsers start audio only after a gesture: any click unlocks the tone.
document.addEventListener('click', () => { if (cue.enabled) cue.unlock(); });

export async function livePage(root, ctx) {
  const mapEl = h('div', { class: 'map', id: 'live-map' });
  const list = h('ol', { class: 'incidents', id: 'live-list', 'aria-live': 'polite' });
  const status = h('span', { class: 'feed-status', id: 'feed-status' }, 'connecting…');
  const sound = h('button', { type: 'button', class: 'small', id: 'sound' });
  const showSound = () => {
    sound.textContent = cue.enabled ? 'Sound: on' : 'Sound: off';
  };
  showSound();
  sound.addEventListener('click', () => {
    cue.enabled = !cue.enabled;
    localStorage.setItem('shotfix.sound', cue.enabled ? 'on' : 'off');
    if (cue.enabled) cue.unlock();
    showSound();
  });
  root.replaceChildren(h('div', { class: 'split' },
    mapEl,
    h('section', { class: 'side' },
      h('div', { class: 'row' }, h('h1', {}, 'Live'), status, sound),
      h('p', { class: 'muted' }, 'The 50 latest incidents, newest first. Alerts go out when the machine locates a shot; review does not hold them back.'),
      list)));

  const map = baseMap(mapEl, ctx.settings, ctx);
  const layer = L.layerGroup().addTo(map);
  const shown = new Map(); // incident id -> {doc, li, marker}
  const points = [];

  // Subscribe first and read the recent list once the feed is open: an
  // alert published in between is in one or the other (or both: the newer
  // version wins).
  const source = new EventSource('/v1/alerts/stream');
  ctx.onCleanup(() => source.close());
  const opened = new Promise((resolve) => {
    source.addEventListener('open', resolve, { once: true });
    setTimeout(resolve, 3000);
  });
  source.onopen = () => { status.textContent = '● live'; status.className = 'feed-status up'; };
  source.onerror = () => { status.textContent = 'reconnecting…'; status.className = 'feed-status down'; };
  const onAlert = (ev) => {
    const received = Date.now();
    let a;
    try { a = JSON.parse(ev.data); } catch { return; }
    const li = render(a.incident, a.kind, received, a.published_utc);
    if (li) {
      // When the first alert was on the page, kept through later updates
      // (the browser test measures publication → shown).
      const entry = shown.get(a.incident.id);
      if (a.kind === 'alert') entry.alert = { shown: Date.now(), published: a.published_utc };
      if (entry.alert) {
        li.dataset.alertShown = String(entry.alert.shown);
        li.dataset.alertPublished = entry.alert.published;
      }
    }
    cue.play(a.kind);
    map.panTo([a.incident.lat, a.incident.lon]);
  };
  for (const kind of ['alert', 'update', 'cancel']) source.addEventListener(kind, onAlert);

  await opened;
  if (!ctx.alive()) return;

  if (ctx.may('sensors')) {
    const { sensors } = await api('/v1/sensors');
    if (!ctx.alive()) return;
    const pts = sensors.map((s) => [s.lat, s.lon]);
    if (pts.length >= 3) L.polygon(hull(pts), { color: '#1565c0', weight: 1, dashArray: '4 4', fill: false, interactive: false }).addTo(map);
    for (const s of sensors) sensorMarker(s).addTo(map);
    points.push(...pts);
  }

  function render(doc, kind, receivedMs, publishedUtc) {
    const old = shown.get(doc.id);
    if (old && old.doc.version > doc.version) return;
    if (old) {
      old.li.remove();
      layer.removeLayer(old.marker);
    }
    const dismissed = kind === 'cancel' || (doc.review && doc.review.status === 'dismissed');
    const colour = CLASS_COLOURS[doc.class] || '#546e7a';
    const marker = L.layerGroup([
      ellipse(doc.shots && doc.shots[0] ? { ...doc.shots[0], lat: doc.lat, lon: doc.lon } : doc, { color: colour }),
      L.circleMarker([doc.lat, doc.lon], { radius: 7, color: '#fff', weight: 2, fillColor: colour, fillOpacity: dismissed ? 0.3 : 1 }),
    ]).bindTooltip(text(`${className(doc.class)}, ${doc.rounds} round(s)`));
    marker.on('click', () => { location.hash = `#/incident/${encodeURIComponent(doc.id)}`; });
    layer.addLayer(marker);
    const li = h('li', {
      class: `incident ${doc.class}${dismissed ? ' dismissed' : ''}`,
      dataset: { id: doc.id, version: doc.version, kind: kind || 'stored', received: receivedMs || '', published: publishedUtc || '' },
    },
    h('a', { href: `#/incident/${encodeURIComponent(doc.id)}` },
      h('span', { class: `badge ${doc.class}` }, className(doc.class)),
      h('strong', {}, ` ${doc.rounds} round${doc.rounds === 1 ? '' : 's'}`),
      doc.shooters > 1 ? ` · ${doc.shooters} shooters` : '',
      doc.automatic ? ' · automatic' : '',
      h('br'),
      h('span', {}, doc.address || `${fmt(doc.lat, 5)}, ${fmt(doc.lon, 5)}`),
      h('br'),
      h('span', { class: 'muted' }, `${fmtTime(doc.first_utc)} · ±${fmt(doc.err95_m, 0)} m · confidence ${fmt(doc.confidence * 100, 0)} %`),
      doc.review ? h('span', { class: 'muted' }, ` · ${doc.review.status} by ${doc.review.by.replace(/^user:/, '')}`) : ''));
    // Newest first shot at the top.
    const first = Date.parse(doc.first_utc);
    const before = [...list.children].find((x) => Date.parse(shown.get(x.dataset.id)?.doc.first_utc) < first);
    list.insertBefore(li, before || null);
    shown.set(doc.id, { doc, li, marker, alert: old && old.alert });
    return li;
  }

  try {
    const { incidents } = await api(`/v1/incidents${query({ limit: 50 })}`);
    if (!ctx.alive()) return;
    for (const doc of incidents) {
      if (doc.rounds === 0) continue;
      render(doc, null, null, null);
      points.push([doc.lat, doc.lon]);
    }
  } catch (e) {
    list.before(failure(e));
  }
  fit(map, points);
}
