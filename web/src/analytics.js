// Analytics: where (an H3 hexagon heatmap), when (hour of day by day of week
// in the city's time zone) and how it changes (weekly counts), filtered by
// time, class and area (the map's view).
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
  const out = h('div', { id: 'analytics-out' });
  const repeatBox = h('section', { class: 'side card', id: 'repeat' });
  const totals = h('p', { id: 'analytics-total' });
  const form = h('form', { class: 'filters row' },
    h('label', {}, 'From ', from), h('label', {}, 'to ', to), h('label', {}, 'Class ', cls), h('label', {}, 'Cells ', res),
    h('label', {}, area, ' only the area in view'), h('button', { type: 'submit' }, 'Apply'));
  root.replaceChildren(h('section', { class: 'card' }, h('h1', {}, 'Analytics'), form, totals),
    h('div', { class: 'split' }, mapEl, repeatBox), out);
  const map = baseMap(mapEl, ctx.settings, ctx);
  const layer = L.layerGroup().addTo(map);
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
    const repeat = [...a.hexes.features].sort((x, y) => y.properties.count - x.properties.count).slice(0, 10);
    repeatBox.replaceChildren(h('h2', {}, 'Repeat locations'),
      repeat.length
        ? table(['H3 cell', 'incidents'], repeat.map((f) => h('tr', {}, h('td', { class: 'mono' }, f.properties.cell), h('td', {}, String(f.properties.count)))))
        : h('p', { class: 'muted' }, 'None.'));
    out.replaceChildren(
      h('section', { class: 'card' }, h('h2', {}, 'Hour of day by day of week'), h('div', { class: 'scroll' }, matrix(a.matrix))),
      h('section', { class: 'card' }, h('h2', {}, 'Incidents per week'), weekly(a.weekly)));
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load().catch((e) => totals.replaceChildren(failure(e)));
  });
  await load();
}
