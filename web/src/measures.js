// Performance measures (GET /v1/measures): what the system did over a
// period — alerts and their latency, reviews, what officers found, misses
// police reported, 911 calls with and without an alert, and the cost per
// alert and per outcome — with the same figures as CSV (/v1/measures.csv,
// `shotfix measures`).
import { api, h, svg, query, table, failure } from './util.js';

const pct = (v) => (v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)} %`);
const num = (v, digits = 0) => (v === null || v === undefined ? '–' : Number(v).toLocaleString(undefined, { maximumFractionDigits: digits }));
const BINS = ['≤ 5 s', '5–10 s', '10–20 s', '20–30 s', '30–60 s', '1–2 min', '2–5 min', '> 5 min'];

function histogram(counts) {
  const width = 560;
  const height = 150;
  const pad = 24;
  const max = Math.max(1, ...counts);
  const slot = (width - 2 * pad) / counts.length;
  return svg('svg', { viewBox: `0 0 ${width} ${height}`, class: 'weekly', id: 'latency-histogram', role: 'img', 'aria-label': 'alert latency histogram' },
    svg('line', { x1: pad, x2: width - pad, y1: height - pad, y2: height - pad, stroke: '#999' }),
    counts.map((n, i) => {
      const bh = (n / max) * (height - 2 * pad);
      // Green within a minute, red beyond.
      return svg('rect', { x: pad + i * slot + 2, y: height - pad - bh, width: slot - 4, height: bh, fill: i < 5 ? '#2e7d32' : '#c62828' },
        svg('title', {}, `${BINS[i]}: ${n}`));
    }),
    counts.map((n, i) => svg('text', { x: pad + (i + 0.5) * slot, y: height - 8, 'text-anchor': 'middle', 'font-size': 10 }, BINS[i])),
    counts.map((n, i) => (n ? svg('text', { x: pad + (i + 0.5) * slot, y: height - pad - (n / max) * (height - 2 * pad) - 3, 'text-anchor': 'middle', 'font-size': 10 }, String(n)) : '')));
}

const row = (label, value, note = '') => h('tr', {}, h('th', {}, label), h('td', { class: 'num' }, value), h('td', { class: 'muted' }, note));

export async function measuresPage(root) {
  const today = new Date();
  const from = h('input', { type: 'date', id: 'm-from', value: new Date(today.getTime() - 30 * 86400e3).toISOString().slice(0, 10) });
  const to = h('input', { type: 'date', id: 'm-to', value: today.toISOString().slice(0, 10) });
  const csv = h('a', { id: 'm-csv', download: 'shotfix-measures.csv' }, 'Download CSV');
  const out = h('div', { id: 'measures-out' });
  const form = h('form', { class: 'filters row' }, h('label', {}, 'From ', from), h('label', {}, 'to ', to), h('button', { type: 'submit' }, 'Apply'), csv);
  root.replaceChildren(h('section', { class: 'card' }, h('h1', {}, 'Performance measures'),
    h('p', { class: 'muted' }, 'Counted from the stored alerts, reviews, outcomes officers recorded, misses police reported and imported 911 calls; days in the city\'s time zone. The definitions are in docs/analytics.md.'), form), out);

  async function load() {
    const params = { from: from.value, to: to.value };
    csv.href = `/v1/measures.csv${query(params)}`;
    let m;
    try {
      m = await api(`/v1/measures${query(params)}`);
    } catch (e) {
      out.replaceChildren(failure(e));
      return;
    }
    const l = m.latency;
    const f = m.field;
    const c = m.calls;
    const outcomes = Object.entries(m.outcomes).map(([k, n]) => row(k.replace('_', ' '), num(n), f.alerts ? `${pct(n / f.alerts)} of alerts` : ''));
    const cost = m.cost;
    out.replaceChildren(
      h('div', { class: 'grid' },
        h('section', { class: 'card' }, h('h2', {}, 'Alerts'), table(['', '', ''], [
          row('published', num(m.alerts_published), `${num(m.days)} days`),
          row('imported (history)', num(m.imported_alerts), 'no publication record'),
          row('within 60 s', num(l.within_60s), pct(l.share_within_60s)),
          row('latency median', l.p50_s === null ? '–' : `${num(l.p50_s, 1)} s`),
          row('latency 90th / 99th', l.p90_s === null ? '–' : `${num(l.p90_s, 1)} / ${num(l.p99_s, 1)} s`),
          row('latency max', l.max_s === null ? '–' : `${num(l.max_s, 1)} s`),
        ], { id: 'm-alerts' }), histogram(l.histogram)),
        h('section', { class: 'card' }, h('h2', {}, 'Review and field outcomes'), table(['', '', ''], [
          row('confirmed by a reviewer', num(m.review.confirmed)),
          row('dismissed by a reviewer', num(m.review.dismissed)),
          row('not reviewed', num(m.review.not_reviewed)),
          row('confirmed in the field', num(f.confirmed), pct(f.share_confirmed)),
          row('unfounded (no evidence)', num(f.unfounded), pct(f.share_unfounded)),
          row('unconfirmed (nothing recorded)', num(f.unconfirmed), pct(f.share_unconfirmed)),
          ...outcomes,
          row('officer time', `${num(m.officer_minutes_total)} min`, `recorded for ${num(m.alerts_with_officer_time)} alert(s)`),
        ], { id: 'm-field' })),
        h('section', { class: 'card' }, h('h2', {}, 'Misses and 911'), table(['', '', ''], [
          row('shootings police reported with no alert', num(m.misses_reported)),
          row('911 calls about shots', num(c.calls)),
          row('alerts with a 911 call', num(c.alerts_with_call), `within ${c.match_m} m, ${c.before_s} s before to ${c.after_s} s after`),
          row('alerts without a 911 call', num(c.alerts_without_call)),
          row('911 calls without an alert', num(c.calls_without_alert)),
        ], { id: 'm-calls' })),
        h('section', { class: 'card' }, h('h2', {}, 'Cost'), cost
          ? table(['', '', ''], [
            row('the period', `${num(cost.period)} ${cost.currency}`),
            row('per alert', `${num(cost.per_alert)} ${cost.currency}`),
            row('per alert with evidence found', `${num(cost.per_alert_with_evidence)} ${cost.currency}`),
            row('per arrest', `${num(cost.per_arrest)} ${cost.currency}`),
            row('per gun recovered', `${num(cost.per_gun_recovered)} ${cost.currency}`),
          ], { id: 'm-cost' })
          : h('p', { class: 'muted' }, 'No cost configured ([measures] cost_per_year).'))));
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    load();
  });
  await load();
}
