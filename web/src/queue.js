// The review queue: machine results no person has reviewed yet, oldest
// first, with the time since each shot ticking.
import { api, h, fmtTime, fmtAge, fmt, className, table } from './util.js';

export async function queuePage(root, ctx) {
  const body = h('div', {});
  const count = h('span', { class: 'muted', id: 'queue-count' });
  root.replaceChildren(h('section', { class: 'card' },
    h('div', { class: 'row' }, h('h1', {}, 'Review queue'), count),
    h('p', { class: 'muted' }, 'Unreviewed incidents of the last 7 days. The alerts went out already; review confirms, corrects or dismisses them.'),
    body));
  const ages = [];
  async function load() {
    const { incidents } = await api('/v1/review/queue');
    incidents.sort((a, b) => Date.parse(a.first_utc) - Date.parse(b.first_utc));
    ages.length = 0;
    count.textContent = `${incidents.length} waiting`;
    const rows = incidents.map((d) => {
      const age = h('td', { class: 'age' });
      ages.push([age, Date.parse(d.first_utc)]);
      return h('tr', { class: 'clickable', dataset: { id: d.id }, onclick: () => { location.hash = `#/incident/${encodeURIComponent(d.id)}`; } },
        age,
        h('td', {}, fmtTime(d.first_utc)),
        h('td', {}, h('span', { class: `badge ${d.class}` }, className(d.class))),
        h('td', {}, `${fmt(d.confidence * 100, 0)} %`),
        h('td', {}, String(d.rounds)),
        h('td', {}, String(d.shooters)),
        h('td', {}, d.address || `${fmt(d.lat, 5)}, ${fmt(d.lon, 5)}`),
        h('td', {}, h('a', { href: `#/incident/${encodeURIComponent(d.id)}` }, 'review →')));
    });
    body.replaceChildren(rows.length
      ? table(['since the shot', 'first shot', 'class', 'confidence', 'rounds', 'shooters', 'where', ''], rows, { id: 'queue' })
      : h('p', { id: 'queue-empty' }, 'Nothing waiting for review.'));
    tick();
  }
  function tick() {
    const now = Date.now();
    for (const [td, t] of ages) td.textContent = fmtAge((now - t) / 1000);
  }
  const ticker = setInterval(tick, 1000);
  // New alerts join the queue as they arrive; reviews made elsewhere take
  // theirs out.
  const source = ctx.may('live') ? new EventSource('/v1/alerts/stream') : null;
  ctx.onCleanup(() => {
    clearInterval(ticker);
    if (source) source.close();
  });
  const reload = () => { if (ctx.alive()) load().catch(() => {}); };
  if (source) for (const kind of ['alert', 'update', 'cancel']) source.addEventListener(kind, reload);
  await load();
}
