// The map every page shares: Leaflet with the configured tile layer (none
// when the server says so, for offline use) and the vector overlays that keep
// it useful without tiles: the city's streets and buildings, sensors, the
// coverage hull, incidents and their error ellipses.
import L from 'leaflet';

const EARTH_M = 6371008.8;

export const CLASS_COLOURS = {
  gunfire: '#c62828', probable_gunfire: '#ef6c00', fireworks: '#6a1b9a', other: '#546e7a', unknown: '#546e7a',
};

/**
 * A Leaflet map in `el` with the server's base layers (`settings` from
 * /v1/map), removed when the page is left (`ctx.onCleanup`).
 */
export function baseMap(el, settings, ctx) {
  const map = L.map(el, { zoomControl: true, preferCanvas: false, attributionControl: true });
  if (ctx) {
    ctx.onCleanup(() => {
      // Stop any pan or zoom in flight first: removing a map mid-animation
      // makes Leaflet's next animation frame throw.
      map.stop();
      map.remove();
    });
  }
  const tiles = settings && settings.tiles;
  if (tiles && tiles.url) {
    // No referrer: the tile server learns which tiles are viewed, not from where.
    L.tileLayer(tiles.url, { attribution: tiles.attribution || '', maxZoom: tiles.max_zoom || 19, referrerPolicy: 'no-referrer' }).addTo(map);
  } else {
    el.classList.add('offline');
  }
  if (settings && settings.overlay) {
    L.geoJSON(settings.overlay, {
      interactive: false,
      style: (f) => (f.geometry.type.includes('Line')
        ? { color: '#9e9e9e', weight: 2, opacity: 0.8 }
        : { color: '#b0a89a', weight: 1, fillColor: '#d7cfc2', fillOpacity: 0.55 }),
    }).addTo(map);
  }
  // The server's origin (the middle of its sensor network) until a page fits
  // the map to what it shows.
  if (settings && settings.center) map.setView(settings.center, settings.zoom || 14);
  else map.setView([0, 0], 2);
  return map;
}

/** Fits the map to `bounds` (a Leaflet bounds or a list of [lat, lon]) if there is anything. */
export function fit(map, points, maxZoom = 17) {
  const b = points instanceof L.LatLngBounds ? points : L.latLngBounds(points);
  if (b.isValid()) map.fitBounds(b.pad(0.15), { maxZoom, animate: false });
}

/** [lat, lon] `east_m`, `north_m` from `lat`, `lon` (small distances). */
export function offset(lat, lon, east_m, north_m) {
  const dlat = (north_m / EARTH_M) * (180 / Math.PI);
  const dlon = (east_m / (EARTH_M * Math.cos((lat * Math.PI) / 180))) * (180 / Math.PI);
  return [lat + dlat, lon + dlon];
}

/**
 * The 95 % error ellipse of a shot as a polygon: `e` is the shot's
 * `ellipse95` (semi-axes in metres, the major axis's azimuth in degrees
 * clockwise from north), or a circle of `err95_m` when a document has none.
 */
export function ellipse(shot, style) {
  const e = shot.ellipse95 || { major_m: shot.err95_m, minor_m: shot.err95_m, azimuth_deg: 0 };
  const az = (e.azimuth_deg * Math.PI) / 180;
  const u = [Math.sin(az), Math.cos(az)];
  const v = [Math.cos(az), -Math.sin(az)];
  const pts = [];
  for (let i = 0; i < 72; i += 1) {
    const t = (i / 72) * 2 * Math.PI;
    const a = e.major_m * Math.cos(t);
    const b = e.minor_m * Math.sin(t);
    pts.push(offset(shot.lat, shot.lon, a * u[0] + b * v[0], a * u[1] + b * v[1]));
  }
  return L.polygon(pts, { weight: 1.5, fillOpacity: 0.15, ...style });
}

/** A sensor marker: a small square. */
export function sensorMarker(s, { title, colour = '#1565c0' } = {}) {
  return L.marker([s.lat, s.lon], {
    title: title || s.id,
    icon: L.divIcon({ className: 'sensor-icon', html: '', iconSize: [10, 10], iconAnchor: [5, 5] }),
    keyboard: false,
  }).bindTooltip(text(title || s.id)).on('add', function add() {
    const el = this.getElement();
    if (el) el.style.background = colour;
  });
}

/**
 * A tooltip's content as text: Leaflet takes a string as HTML, and sensor ids,
 * classes and the like come from outside.
 */
export function text(s) {
  const span = document.createElement('span');
  span.textContent = String(s);
  return span;
}

/** The convex hull of [lat, lon] points (Andrew's monotone chain on lon/lat). */
export function hull(points) {
  const p = [...points].sort((a, b) => a[1] - b[1] || a[0] - b[0]);
  if (p.length < 3) return p;
  const cross = (o, a, b) => (a[1] - o[1]) * (b[0] - o[0]) - (a[0] - o[0]) * (b[1] - o[1]);
  const lower = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  const upper = [];
  for (const q of p.reverse()) {
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/** A colour from green (good) through yellow to red (bad) for t in [0, 1]. */
export function ramp(t) {
  const x = Math.min(1, Math.max(0, t));
  const hue = 120 * (1 - x);
  return `hsl(${hue}, 75%, 42%)`;
}

/** A legend control: rows of [colour, label]. */
export function legend(map, title, rows) {
  const control = L.control({ position: 'bottomright' });
  control.onAdd = () => {
    const div = L.DomUtil.create('div', 'legend');
    const t = document.createElement('strong');
    t.textContent = title;
    div.append(t);
    for (const [colour, label] of rows) {
      const row = document.createElement('div');
      const sw = document.createElement('i');
      sw.style.background = colour;
      row.append(sw, document.createTextNode(label));
      div.append(row);
    }
    return div;
  };
  control.addTo(map);
  return control;
}

export { L };
