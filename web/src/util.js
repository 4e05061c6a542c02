// Small helpers shared by every page: DOM building without innerHTML (every
// string from the server is text, never markup), requests, and formatting.

/** Creates an element: h('td', {class: 'x'}, 'text', child, …). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** An SVG element. */
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children.flat()) if (c) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/** A failed request: the server's one-line message and the HTTP status. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** GET (or another method with a JSON body) and parse the JSON answer. */
export async function api(path, { method = 'GET', body, signal } = {}) {
  const init = { method, signal, headers: {} };
  if (body !== undefined) {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  if (r.status === 204) return null;
  const text = await r.text();
  let value = null;
  try {
    value = text ? JSON.parse(text) : null;
  } catch {
    value = null;
  }
  if (!r.ok) throw new ApiError(r.status, (value && value.error) || `${r.status} ${r.statusText}`);
  return value;
}

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const s = q.toString();
  return s ? '?' + s : '';
}

let zone = undefined;
/** The city's time zone (IANA name) for every displayed time. */
export function setTimeZone(tz) {
  try {
    new Intl.DateTimeFormat('en-GB', { timeZone: tz });
    zone = tz;
  } catch {
    zone = undefined;
  }
}

/** A time as the city's local date and time, to the second (or millisecond). */
export function fmtTime(iso, ms = false) {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso || '';
  const s = d.toLocaleString('en-GB', {
    timeZone: zone, year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false,
  });
  return ms ? `${s}.${String(d.getUTCMilliseconds()).padStart(3, '0')}` : s;
}

/** A duration in seconds as "12 s", "4 min 05 s", "3 h 02 min", "2 d 4 h". */
export function fmtAge(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

export const fmt = (x, digits = 1) => (x === undefined || x === null || Number.isNaN(x) ? '–' : Number(x).toFixed(digits));

/** The class as people say it. */
export function className(c) {
  return { gunfire: 'gunfire', probable_gunfire: 'probable gunfire', fireworks: 'fireworks', other: 'other', unknown: 'unknown' }[c] || c;
}

/** A table from a header row and rows of cells. */
export function table(head, rows, attrs = {}) {
  return h('table', attrs,
    h('thead', {}, h('tr', {}, head.map((c) => h('th', {}, c)))),
    h('tbody', {}, rows));
}

/** A message that something failed, for the page. */
export function failure(e) {
  return h('p', { class: 'error', role: 'alert' }, e instanceof ApiError ? e.message : `error: ${e.message || e}`);
}
