// The public view: gunfire counts by block or H3 hexagon, delayed, with no
// exact place, no sensor and no audio. It is what the server's
// /v1/public/incidents and /v1/public/cells give to anyone; nothing more
// precise is fetched here.
import { L, text, baseMap, fit, legend } from './map.js';
import { api, h, query, fmtTime, failure } from './util.js';

const SHADES = ['#fee5d9', '#fcae91', '#fb6a4a', '#de2d26', '#a50f15'];

export async function publicPage(root, ctx) {
  const mapEl = h('div', { class: 'map', id: 'public-map' });
  const days = h('select', { id: 'public-days' }, [30, 90, 365, 3650].map((d) => h('option', { value: d }, d >= 3650 ? 'all time' : `last ${d} days`)));
  const grid = h('select', { id: 'public-grid' }, [['blocks', 'square blocks'], ['cells', 'hexagons (H3)']].map(([v, t]) => h('option', { value: v }, t)));
  const info = h('p', { class: 'muted', id: 'public-info' });
  root.replaceChildren(h('div', { class: 'split' }, mapEl,
    h('section', { class: 'side card' },
      h('h1', {}, 'Gunfire in the city'),
      h('p', {}, 'Confirmed and probable gunfire incidents counted by block. To protect the people involved, places are coarsened to blocks, counts appear only after a delay, and there are no sensor locations and no audio.'),
      h('label', {}, 'Period ', days), h('label', {}, 'Counted in ', grid), info)));
  const map = baseMap(mapEl, ctx.settings, ctx);
  const layer = L.layerGroup().addTo(map);
  let shownLegend = null;
  async function load() {
    const n = Number(days.value);
    const since = n >= 3650 ? undefined : new Date(Date.now() - n * 86400e3).toISOString();
    let blocks;
    try {
      blocks = await api(`/v1/public/${grid.value === 'cells' ? 'cells' : 'incidents'}${query({ since })}`);
    } catch (e) {
      info.replaceChildren(failure(e));
      return;
    }
    layer.clearLayers();
    const counts = blocks.features.map((f) => f.properties.gunfire_incidents);
    const max = Math.max(1, ...counts);
    const shade = (c) => SHADES[Math.min(SHADES.length - 1, Math.floor(((c - 1) / max) * SHADES.length))];
    const geo = L.geoJSON(blocks, {
      style: (f) => ({ color: '#7f0000', weight: 0.5, fillColor: shade(f.properties.gunfire_incidents), fillOpacity: 0.75 }),
      onEachFeature: (f, l) => l.bindTooltip(text(f.properties.block_m
        ? `${f.properties.gunfire_incidents} incident(s) in this ${f.properties.block_m} m block`
        : `${f.properties.gunfire_incidents} incident(s) in this hexagon`)),
    }).addTo(layer);
    const total = counts.reduce((a, b) => a + b, 0);
    const p = blocks.properties;
    info.textContent = `${total} incident(s) in ${counts.length} ${grid.value === 'cells' ? 'hexagon' : 'block'}(s), up to ${fmtTime(p.until_utc)}; the last ${p.delay_hours} h are not shown yet.`;
    if (shownLegend) shownLegend.remove();
    shownLegend = legend(map, 'incidents per block', [[SHADES[0], '1'], [SHADES[SHADES.length - 1], String(max)]]);
    if (counts.length) fit(map, geo.getBounds(), 16);
  }
  days.addEventListener('change', load);
  grid.addEventListener('change', load);
  days.value = '365';
  await load();
}
