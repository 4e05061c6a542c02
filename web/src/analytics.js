// Analytics: where (an H3 hexagon heatmap, the Gi* hotspots at a 5 % false
// discovery rate, repeat locations, counts per area of interest), when (hour
// of day by day of week in the city's time zone, and the school calendar) and
// how it changes (weekly counts), filtered by time, class and area (the map's
// view).
import { L, text, baseMap, fit, legend } from './map.js';
import { api, h, svg, query, table, failure } from './util.js';

const DAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const HEAT = (t) => `rgba(198, 40, 40, ${0.08 + 0.85 * Math.min(1, Math.max(0, t))})`;

function matrix(m) {
  const max = Math.max(1, ...m.flat());
  return h('table', { class: 'matrix', id: 'matrix' },
    h('thead', {}, h('tr', {}, h('th', {}, ''), Array.from({ length: 24 }, (_, hr) => h('th', {}, String(hr))))),
    h('tbody', {}, m.map((row, d) => h('tr', {}, h('th', {}, DAYS[d]),
      row.map((n, hr) => h('td', { style: `background:${n ? HEAT(n / max) : 'transparent'}`, title: `${DAYS[d]} ${hr}:00–${hr + 1}:00: ${n}` }, n ? String(n) : ''))))));
}

function weekly(weeks) {
  const width = 640;
  const height = 150;
  const pad = 28;
  if (!weeks.length) return h('p', { class: 'muted' }, 'No weeks in range.');
  const max = Math.max(1, ...weeks.map((w) => w.count));
  const slot = (width - 2 * pad) / weeks.length;
  const bw = Math.min(slot, 48);
  const bars = weeks.map((w, i) => {
    const bh = (w.count / max) * (height - 2 * pad);
    return svg('rect', { x: pad + i * slot + (slot - bw) / 2 + 1, y: height - pad - bh, width: Math.max(1, bw - 2), height: bh, fill: '#c62828' },
      svg('title', {}, `week of ${w.week_start}: ${w.count}`));
  });
  const labels = [0, Math.floor((weeks.length - 1) / 2), weeks.length - 1].filter((v, i, a) => a.indexOf(v) === i)
    .map((i) => svg('text', { x: pad + (i + 0.5) * slot, y: height - 8, 'text-anchor': 'middle', 'font-size': 10 }, weeks[i].week_start));
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'weekly', id: 'weekly', role: 'img', 'aria-label': 'incidents per week' },
    svg('line', { x1: pad, x2: width - pad, y1: height - pad, y2: height - pad, stroke: '#999' }),
    svg('text', { x: 2, y: pad, 'font-size': 10 }, String(max)),
    bars, labels);
}

export async function analyticsPage(root, ctx) {
  const mapEl = h('div', { class: 'map', id: 'analytics-map' });
  const today = new Date();
  const from = h('input', { type: 'date', id: 'from', value: new Date(today.getTime() - 365 * 86400e3).toISOString().slice(0, 10) });
  const to = h('input', { type: 'date', id: 'to', value: today.toISOString().slice(0, 10) });
  const cls = h('select', { id: 'class' },
    [['', 'gunfire and probable'], ['all', 'every class'], ['gunfire', 'gunfire'], ['probable_gunfire', 'probable gunfire'], ['fireworks', 'fireworks'], ['other', 'other']]
      .map(([v, t]) => h('option', { value: v }, t)));
  const res = h('select', { id: 'res' }, [[7, '≈ 1.2 km hexagons'], [8, '≈ 460 m hexagons'], [9, '≈ 170 m hexagons'], [10, '≈ 65 m hexagons']].map(([v, t]) => h('option', { value: v }, t)));
  res.value = '9';
  const area = h('input', { type: 'checkbox', id: 'area' });
  const showHot = h('input', { type: 'checkbox', id: 'hotspots', checked: true });
  const showAreas = h('input', { type: 'checkbox', id: 'show-areas', checked: true });
  const out = h('div', { id: 'analytics-out' });
  const repeatBox = h('section', { class: 'side card', id: 'repeat' });
  const totals = h('p', { id: 'analytics-total' });
  const form = h('form', { class: 'filters row' },
    h('label', {}, 'From ', from), h('label', {}, 'to ', to), h('label', {}, 'Class ', cls), h('label', {}, 'Cells ', res),
    h('label', {}, area, ' only the area in view'), h('label', {}, showHot, ' hotspots'), h('label', {}, showAreas, ' areas'),
    h('button', { type: 'submit' }, 'Apply'));
  root.replaceChildren(h('section', { class: 'card' }, h('h1', {}, 'Analytics'), form, totals),
    h('div', { class: 'split' }, mapEl, repeatBox), out);
  const map = baseMap(mapEl, ctx.settings, ctx);
  const layer = L.layerGroup().addTo(map);
  const hotLayer = L.layerGroup().addTo(map);
  const areaLayer = L.layerGroup().addTo(map);
  let shownLegend = null;
  let first = true;

  async function load() {
    const b = map.getBounds();
    const params = {
      // Days in the city's time zone (the server turns them into instants).
      from: from.value || undefined,
      to: to.value || undefined,
      class: cls.value,
      res: res.value,
      bbox: area.checked ? [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()].map((v) => v.toFixed(6)).join(',') : undefined,
    };
    let a;
    try {
      a = await api(`/v1/analytics${query(params)}`);
    } catch (e) {
      totals.replaceChildren(failure(e));
      return;
    }
    if (!ctx.alive()) return;
    totals.textContent = `${a.total} incident(s); times in ${a.timezone}.`;
    layer.clearLayers();
    const max = Math.max(1, ...a.hexes.features.map((f) => f.properties.count));
    const geo = L.geoJSON(a.hexes, {
      style: (f) => ({ color: '#7f0000', weight: 0.5, fillColor: HEAT(f.properties.count / max), fillOpacity: 0.8 }),
      onEachFeature: (f, l) => l.bindTooltip(text(`${f.properties.count} incident(s)`)),
    }).addTo(layer);
    if (shownLegend) shownLegend.remove();
    shownLegend = legend(map, 'incidents per hexagon', [[HEAT(1 / max), '1'], [HEAT(1), String(max)]]);
    if (first && a.hexes.features.length) fit(map, geo.getBounds(), 16);
    first = false;
    const areasCard = h('section', { class: 'card', id: 'areas' });
    out.replaceChildren(
      h('section', { class: 'card' }, h('h2', {}, 'Hour of day by day of week'), h('div', { class: 'scroll' }, matrix(a.matrix))),
      h('section', { class: 'card' }, h('h2', {}, 'Incidents per week'), weekly(a.weekly)),
      areasCard);
    // Hotspots need a resolution of 10 or coarser; the areas are the same
    // selection counted per area.
    const hotParams = { ...params, res: String(Math.min(10, Number(res.value))) };
    await Promise.all([hotspots(hotParams), areas(params, areasCard)]);
  }

  async function hotspots(params) {
    hotLayer.clearLayers();
    repeatBox.replaceChildren(h('h2', {}, 'Hotspots and repeat locations'), h('p', { class: 'muted' }, 'Testing…'));
    let r;
    try {
      r = await api(`/v1/analytics/hotspots${query(params)}`);
    } catch (e) {
      repeatBox.replaceChildren(h('h2', {}, 'Hotspots and repeat locations'), failure(e));
      return;
    }
    if (!ctx.alive()) return;
    const hot = r.cells.features.filter((f) => f.properties.hotspot);
    if (showHot.checked) {
      L.geoJSON({ type: 'FeatureCollection', features: hot }, {
        style: () => ({ color: '#111', weight: 2.5, fill: false, dashArray: '4 3' }),
        onEachFeature: (f, l) => l.bindTooltip(text(`hotspot: ${f.properties.count} incident(s), Gi* z ${f.properties.gi_z}, p ${f.properties.p}`)),
      }).addTo(hotLayer);
    }
    const hotCount = hot.reduce((n, f) => n + f.properties.count, 0);
    repeatBox.replaceChildren(
      h('h2', {}, 'Hotspots and repeat locations'),
      h('p', { id: 'hotspot-summary' }, `${hot.length} hotspot cell(s) of ${r.area_cells} tested (Getis–Ord Gi*, ${r.permutations} permutations, ${r.false_discovery_rate * 100} % false discovery rate), holding ${hotCount} incident(s). Dashed outlines on the map.`),
      h('h3', {}, `Blocks with ${params.repeat_min || 3} or more`),
      r.repeat_locations.length
        ? table(['block (H3 res. 10)', 'incidents', 'first', 'last'], r.repeat_locations.slice(0, 15).map((x) => h('tr', {},
          h('td', { class: 'mono' }, h('a', { href: '#', onclick: (ev) => { ev.preventDefault(); map.setView([x.lat, x.lon], 17); } }, x.cell)),
          h('td', {}, String(x.count)), h('td', {}, x.first_utc.slice(0, 10)), h('td', {}, x.last_utc.slice(0, 10)))), { id: 'repeat-table' })
        : h('p', { class: 'muted' }, 'None.'));
  }

  async function areas(params, card) {
    areaLayer.clearLayers();
    let r;
    try {
      r = await api(`/v1/analytics/areas${query({ from: params.from, to: params.to, class: params.class })}`);
    } catch (e) {
      card.replaceChildren(h('h2', {}, 'Areas of interest'), failure(e));
      return;
    }
    if (!ctx.alive()) return;
    if (!r.features.length) {
      card.replaceChildren(h('h2', {}, 'Areas of interest'), h('p', { class: 'muted' }, 'No areas configured ([areas] layers in the server configuration: districts, beats, schools).'));
      return;
    }
    if (showAreas.checked) {
      for (const f of r.features) {
        const p = f.properties;
        const tip = text(`${p.layer}: ${p.name}: ${p.count} incident(s)`);
        if (p.buffer_m) {
          const [lon, lat] = f.geometry.coordinates;
          L.circle([lat, lon], { radius: p.buffer_m, color: '#1565c0', weight: 1.5, fillOpacity: 0.05 }).bindTooltip(tip).addTo(areaLayer);
        } else {
          L.geoJSON(f, { style: () => ({ color: '#1565c0', weight: 1.5, fillOpacity: 0.03 }) }).bindTooltip(tip).addTo(areaLayer);
        }
      }
    }
    const cal = r.properties.school_hours;
    const head = ['layer', 'area', 'incidents'].concat(cal ? ['school hours', 'after school', 'other times'] : []);
    const rows = r.features.map((f) => {
      const p = f.properties;
      return h('tr', {}, h('td', {}, p.layer), h('td', {}, p.buffer_m ? `${p.name} (${p.buffer_m} m)` : p.name), h('td', {}, String(p.count)),
        cal ? [h('td', {}, String(p.school)), h('td', {}, String(p.after_school)), h('td', {}, String(p.other_times))] : '');
    });
    card.replaceChildren(h('h2', {}, 'Areas of interest'),
      cal ? h('p', { class: 'muted' }, `School hours ${cal.start}–${cal.end}, after school to ${cal.after_end}, on ${cal.days.join(', ')}${cal.terms.length ? ` in ${cal.terms.length} term(s)` : ''}; times in ${r.properties.timezone}.`) : '',
      h('div', { class: 'scroll' }, table(head, rows, { id: 'areas-table' })));
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load().catch((e) => totals.replaceChildren(failure(e)));
  });
  await load();
}
