// Sensor health and coverage: each sensor's last heartbeat, clock quality,
// noise floor, buffer and queue; and the map of where a shot would be heard
// by enough sensors and how well it would be located there.
import { L, baseMap, fit, hull, sensorMarker, ramp, legend } from './map.js';
import { api, h, fmtAge, fmt, table, failure } from './util.js';

/** A sensor counts as late after three missed heartbeats of the default 60 s interval. */
const LATE_S = 180;

function health(s, now, maxClockMs) {
  if (!s.heartbeat_received_utc) return ['none', 'no heartbeat'];
  const age = (now - Date.parse(s.heartbeat_received_utc)) / 1000;
  if (age > 5 * LATE_S) return ['down', `silent ${fmtAge(age)}`];
  if (age > LATE_S) return ['late', `late ${fmtAge(age)}`];
  const c = s.heartbeat.clock || {};
  if (!c.synced || (c.est_error_ms !== undefined && c.est_error_ms > maxClockMs)) return ['warn', 'clock'];
  return ['ok', 'ok'];
}

export async function sensorsPage(root, ctx) {
  const mapEl = h('div', { class: 'map', id: 'sensors-map' });
  const tableBox = h('section', { class: 'card', id: 'sensor-table' });
  const coverageInfo = h('p', { class: 'muted', id: 'coverage-info' });
  root.replaceChildren(h('div', { class: 'split' }, mapEl,
    h('section', { class: 'side card' }, h('h1', {}, 'Sensors'),
      h('p', {}, 'Colour: expected 95 % location error of a shot heard by every sensor within range (timing error of diffracted urban paths, ', h('a', { href: '/v1/openapi.json' }, 'method'), '). Blank: fewer sensors than a fix needs.'),
      coverageInfo)), tableBox);
  const map = baseMap(mapEl, ctx.settings, ctx);
  const [{ sensors, max_clock_error_ms: maxClockMs = 1 }, coverage] = await Promise.all([
    api('/v1/sensors'),
    api('/v1/coverage').catch((e) => ({ error: e })),
  ]);
  if (!ctx.alive()) return;
  if (coverage.error) coverageInfo.replaceChildren(failure(coverage.error));
  else {
    const worst = coverage.max_err95_m;
    L.geoJSON(coverage.cells, {
      interactive: false,
      style: (f) => ({ stroke: false, fillColor: ramp(f.properties.err95_m / worst), fillOpacity: 0.35 }),
    }).addTo(map);
    const covered = coverage.cells.features.length * coverage.step_m * coverage.step_m / 1e6;
    const good = coverage.cells.features.filter((f) => f.properties.err95_m <= 25).length * coverage.step_m * coverage.step_m / 1e6;
    coverageInfo.textContent = `${fmt(covered, 2)} km² heard by at least ${coverage.min_sensors} sensors; ${fmt(good, 2)} km² expected within 25 m (95 %). Grid ${fmt(coverage.step_m, 0)} m, hearing range ${fmt(coverage.max_range_m / 1000, 1)} km, timing error ${fmt(coverage.arrival_sigma_ms, 1)} ms.`;
    legend(map, 'expected error (95 %)', [[ramp(0), '0 m'], [ramp(0.5), `${fmt(worst / 2, 0)} m`], [ramp(1), `≥ ${fmt(worst, 0)} m`]]);
  }
  const pts = sensors.map((s) => [s.lat, s.lon]);
  if (pts.length >= 3) L.polygon(hull(pts), { color: '#1565c0', weight: 1.5, dashArray: '4 4', fill: false, interactive: false }).addTo(map);
  const now = Date.now();
  const colours = { ok: '#2e7d32', warn: '#f9a825', late: '#ef6c00', down: '#c62828', none: '#78909c' };
  const rows = sensors.map((s) => {
    const [state, text] = health(s, now, maxClockMs);
    sensorMarker(s, { title: `${s.id}: ${text}`, colour: colours[state] }).addTo(map);
    const b = s.heartbeat || {};
    const c = b.clock || {};
    return h('tr', { dataset: { sensor: s.id, state } },
      h('td', {}, s.id),
      h('td', {}, h('span', { class: `state ${state}` }, text)),
      h('td', {}, s.heartbeat_received_utc ? `${fmtAge((now - Date.parse(s.heartbeat_received_utc)) / 1000)} ago` : '–'),
      h('td', {}, c.source ? `${c.synced ? 'synced' : 'NOT synced'}, ${fmt(c.est_error_ms, 3)} ms (${c.source})` : '–'),
      h('td', {}, b.noise_floor_dbfs !== undefined && b.noise_floor_dbfs !== null ? `${fmt(b.noise_floor_dbfs, 1)} dBFS` : '–'),
      h('td', {}, b.buffer_s !== undefined ? `${fmt(b.buffer_s / 3600, 1)} h` : '–'),
      h('td', {}, b.disk_free_bytes !== undefined ? `${fmt(b.disk_free_bytes / 1e9, 1)} GB` : '–'),
      h('td', {}, b.queue_reports !== undefined ? String(b.queue_reports) : '–'),
      h('td', {}, b.software_version || '–'),
      h('td', {}, `${fmt(s.lat, 5)}, ${fmt(s.lon, 5)}`));
  });
  const counts = {};
  for (const r of rows) counts[r.dataset.state] = (counts[r.dataset.state] || 0) + 1;
  tableBox.replaceChildren(
    h('h2', {}, `${sensors.length} sensors`, h('span', { class: 'muted' }, ` · ${Object.entries(counts).map(([k, v]) => `${v} ${k}`).join(' · ')}`)),
    table(['sensor', 'health', 'last heartbeat', 'clock', 'noise floor', 'audio buffer', 'disk free', 'queued', 'software', 'position'], rows, { id: 'sensors' }));
  fit(map, pts);
}
