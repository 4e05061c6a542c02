// The dashboard in a real browser: Debian's Chromium driven by Playwright
// (playwright-core, no browser download). crates/shotfix/tests/dashboard.rs
// starts a server with replayed scenes and runs this with the settings in
// SHOTFIX_DASHBOARD (JSON):
//
//   base         the server, e.g. http://127.0.0.1:8080
//   passwords    {admin, reviewer, dispatcher, analyst, public}: each a user
//                of that role and name
//   triggers     commands (argv arrays) that each make the server publish a
//                new alert: run one at a time while the live view is open
//   screenshots  a folder for the PNGs
//   chromium     the browser (default /usr/bin/chromium)
//
// Every page is loaded with data, asserted on, and photographed at 1280×800;
// the live view, an incident and the queue also on a phone. The last line on
// standard output is a JSON summary (alert latencies, counts). Any failed
// check, console error or uncaught page error exits 1.
import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);
const settings = JSON.parse(process.env.SHOTFIX_DASHBOARD || '{}');
const { base, passwords, triggers = [], screenshots } = settings;
if (!base || !passwords || !screenshots) {
  console.error('SHOTFIX_DASHBOARD must give base, passwords and screenshots');
  process.exit(2);
}
await mkdir(screenshots, { recursive: true });

const problems = [];
const summary = { latency_ms: [], pages: {} };
function check(ok, what) {
  if (!ok) problems.push(what);
  return ok;
}

const browser = await chromium.launch({
  executablePath: settings.chromium || '/usr/bin/chromium',
  // As the machine's own check starts it: no sandbox (root), no GPU, and none
  // of Chromium's own network traffic (the machine's network is closed).
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required'],
});

/** A fresh browser context (own cookies) with console errors collected. */
async function context(name, options) {
  const ctx = await browser.newContext(options);
  const page = await ctx.newPage();
  const requests = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`${name}: console error: ${m.text()} (${m.location().url})`);
  });
  page.on('pageerror', (e) => problems.push(`${name}: page error: ${e.message}`));
  page.on('request', (r) => requests.push(r.url()));
  page.setDefaultTimeout(15000);
  return { ctx, page, requests };
}

async function login(page, name) {
  await page.goto(`${base}/#/login`);
  await page.fill('#name', name);
  await page.fill('#password', passwords[name]);
  await page.click('form.login button[type=submit]');
  await page.waitForFunction(() => !location.hash.startsWith('#/login'));
}

async function shot(page, file, fullPage = false) {
  await page.waitForTimeout(400); // tiles and canvases settle
  await page.screenshot({ path: `${screenshots}/${file}`, fullPage });
}

const navText = (page) => page.$$eval('#nav a', (as) => as.map((a) => a.textContent));

/**
 * No horizontal scrolling: nothing in the page reaches past the viewport's
 * width as set (a mobile browser widens its layout viewport to fit wide
 * content, so window.innerWidth would hide the overflow).
 */
async function fitsWidth(page, what) {
  const width = page.viewportSize().width;
  const widest = await page.evaluate(() => Math.max(
    document.documentElement.scrollWidth,
    ...[...document.querySelectorAll('main *')].map((e) => {
      // What a scrolling box holds inside it does not widen the page.
      const clipped = e.closest('.card, .scroll, .leaflet-container');
      return clipped && clipped !== e ? 0 : e.getBoundingClientRect().right;
    }),
  ));
  check(widest <= width + 1, `${what}: ${Math.round(widest)} px wide in a ${width} px viewport`);
}

async function step(name, f) {
  try {
    await f();
  } catch (e) {
    problems.push(`${name}: ${e.message.split('\n')[0]}`);
  }
}

const desktop = { viewport: { width: 1280, height: 800 } };
const phone = { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true };

// ---- an administrator at a desk: every page -------------------------------------
const admin = await context('admin', desktop);
const { page } = admin;
let incidentId = null;
await step('login', async () => {
  await login(page, 'admin');
  const nav = await navText(page);
  check(['Live', 'Review', 'Sensors', 'Analytics', 'Public view'].every((t) => nav.includes(t)), `admin nav: ${nav}`);
});

await step('live view', async () => {
  await page.goto(`${base}/#/`);
  await page.waitForSelector('#live-list li');
  await page.waitForSelector('#feed-status.up');
  const stored = await page.$$eval('#live-list li', (l) => l.length);
  summary.pages.live_stored = stored;
  check(stored >= 1, 'live list is empty');
  // Map: the city's streets and buildings, sensors, the coverage hull, incidents.
  const paths = await page.$$eval('#live-map path', (p) => p.length);
  const sensors = await page.$$eval('#live-map .sensor-icon', (s) => s.length);
  summary.pages.live_map_paths = paths;
  check(paths > 100, `live map draws ${paths} vector paths (city, hull, incidents)`);
  check(sensors >= 4, `live map shows ${sensors} sensors`);
  await shot(page, 'live.png');
});

// New alerts while the live view is open: each must be on the page within 1 s
// of the server publishing it (the server's published_utc, the browser's
// clock: one machine).
for (const [k, argv] of triggers.entries()) {
  await step(`live alert ${k + 1}`, async () => {
    const before = await page.$$eval('#live-list li[data-alert-shown]', (l) => l.length);
    const cuesBefore = Number(await page.evaluate(() => document.body.dataset.cues || 0));
    await run(argv[0], argv.slice(1), { timeout: 60000 });
    await page.waitForFunction((n) => document.querySelectorAll('#live-list li[data-alert-shown]').length > n, before, { timeout: 30000 });
    const got = await page.$$eval('#live-list li[data-alert-shown]', (l) => l.map((li) => ({
      shown: Number(li.dataset.alertShown), published: li.dataset.alertPublished, id: li.dataset.id,
    })));
    const fresh = got.sort((a, b) => b.shown - a.shown)[0];
    if (!check(fresh, 'no first alert arrived')) return;
    const latency = fresh.shown - Date.parse(fresh.published);
    summary.latency_ms.push(latency);
    check(latency >= 0 && latency < 1000, `alert ${fresh.id} shown ${latency} ms after it was published`);
    const cues = Number(await page.evaluate(() => document.body.dataset.cues || 0));
    check(cues > cuesBefore, 'no audible cue for the new alert');
    incidentId = fresh.id;
  });
}
await step('live after alerts', async () => {
  await shot(page, 'live-alert.png');
  if (!incidentId) incidentId = await page.$eval('#live-list li', (li) => li.dataset.id);
});

await step('incident page', async () => {
  await page.goto(`${base}/#/incident/${encodeURIComponent(incidentId)}`);
  await page.waitForSelector('#shots tbody tr');
  await page.waitForSelector('#history tbody tr');
  const rounds = Number((await page.textContent('#rounds')).trim().split(/\s/)[0]);
  const shots = await page.$$eval('#shots tbody tr', (r) => r.length);
  check(rounds >= 1 && shots === rounds, `incident: ${rounds} rounds, ${shots} shots in the sequence`);
  const ellipses = await page.$$eval('#incident-map path.leaflet-interactive', (p) => p.length);
  check(ellipses >= shots, `incident map: ${ellipses} shapes for ${shots} shots and their ellipses`);
  const arrivals = await page.$$eval('#arrivals tbody tr', (rows) => rows.map((r) => Number(r.children[3].textContent)));
  check(arrivals.length >= 4 && arrivals.every(Number.isFinite), `arrivals with residuals: ${arrivals}`);
  // Each shown clip is decoded and drawn (waveform and spectrogram).
  await page.waitForFunction(() => {
    const figs = [...document.querySelectorAll('figure.clip')];
    return figs.length > 0 && figs.every((f) => f.dataset.state !== 'loading');
  });
  const states = await page.$$eval('figure.clip', (f) => f.map((x) => x.dataset.state));
  check(states.length >= 1 && states.every((s) => s === 'drawn'), `clips: ${states}`);
  const ink = await page.$eval('figure.clip canvas.spec', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 60) lit += 1;
    return lit / (d.length / 4);
  });
  check(ink > 0.05, `the spectrogram is blank (${ink})`);
  summary.pages.incident = { rounds, arrivals: arrivals.length, clips: states.length };
  await shot(page, 'incident.png');
});

await step('outcome', async () => {
  await page.waitForSelector('#outcome-form');
  await page.check('#outcome-form input[value=casings]');
  await page.fill('#outcome-minutes', '25');
  await page.fill('#outcome-note', 'Browser test: six casings in the alley.');
  await page.click('#outcome-form button[type=submit]');
  await page.waitForSelector('#outcomes-list li');
  const items = await page.$$eval('#outcomes-list li', (l) => l.map((x) => x.textContent));
  check(items.length === 1 && /casings, 25 officer-minutes/.test(items[0]), `outcomes: ${items}`);
});

await step('review', async () => {
  const historyBefore = await page.$$eval('#history tbody tr', (r) => r.length);
  await page.selectOption('#review-action', 'confirm');
  await page.fill('#review-reason', 'Browser test: confirmed from the audio and the sensor pattern.');
  await page.click('#review-form button[type=submit]');
  await page.waitForFunction(() => /confirmed by/.test(document.getElementById('review-status')?.textContent || ''));
  await page.waitForSelector('#history tbody tr');
  const first = await page.$eval('#history tbody tr', (r) => [...r.children].map((c) => c.textContent));
  check(first.some((t) => t.includes('user:admin')) && first.some((t) => t.includes('Browser test')), `history's newest entry: ${first}`);
  const historyAfter = await page.$$eval('#history tbody tr', (r) => r.length);
  check(historyAfter >= Math.min(historyBefore + 1, 12), `history ${historyBefore} → ${historyAfter} rows`);
});

await step('review queue', async () => {
  await page.goto(`${base}/#/queue`);
  await page.waitForSelector('#queue tbody tr, #queue-empty');
  const rows = await page.$$eval('#queue tbody tr', (r) => r.map((x) => x.dataset.id));
  check(rows.length >= 1, 'the queue is empty');
  check(!rows.includes(incidentId), 'the reviewed incident is still in the queue');
  const age = () => page.$eval('#queue tbody tr td.age', (td) => td.textContent);
  const a1 = await age();
  check(/^\d+ (s|min \d+ s|h \d+ min|d \d+ h)$/.test(a1), `time since the shot: ${a1}`);
  await page.waitForTimeout(1100);
  const a2 = await age();
  // Older than a day the display changes by the hour; otherwise every second.
  check(a1 !== a2 || /^\d+ d/.test(a1), `the time since the shot does not tick (${a1})`);
  summary.pages.queue = rows.length;
  await shot(page, 'queue.png');
});

await step('sensors', async () => {
  await page.goto(`${base}/#/sensors`);
  await page.waitForSelector('#sensors tbody tr');
  await page.waitForFunction(() => /km²/.test(document.getElementById('coverage-info')?.textContent || ''));
  const states = await page.$$eval('#sensors tbody tr', (r) => r.map((x) => x.dataset.state));
  check(states.length >= 4 && states.every((s) => s === 'ok'), `sensor health: ${states}`);
  const floors = await page.$$eval('#sensors tbody tr', (r) => r.map((x) => x.children[4].textContent));
  check(floors.every((f) => /dBFS$/.test(f)), `noise floors: ${floors}`);
  const cells = await page.$$eval('#sensors-map path', (p) => p.length);
  check(cells > 100, `coverage map: ${cells} cells`);
  summary.pages.sensors = states.length;
  await shot(page, 'sensors.png');
});

await step('analytics', async () => {
  await page.goto(`${base}/#/analytics`);
  await page.selectOption('#class', 'all');
  await page.click('form.filters button[type=submit]');
  await page.waitForFunction(() => /^\d+ incident/.test(document.getElementById('analytics-total')?.textContent || ''));
  const total = Number((await page.textContent('#analytics-total')).split(' ')[0]);
  const matrix = await page.$$eval('#matrix tbody td', (t) => t.reduce((s, c) => s + Number(c.textContent || 0), 0));
  const weeks = await page.$$eval('#weekly rect', (r) => r.length);
  const hexes = await page.$$eval('#analytics-map path.leaflet-interactive', (p) => p.length);
  check(total >= 3, `analytics counts ${total} incidents`);
  check(matrix === total, `the hour × weekday matrix holds ${matrix} of ${total}`);
  check(weeks >= 2 && hexes >= 1, `${weeks} weeks, ${hexes} hexagons`);
  await page.waitForFunction(() => /hotspot cell/.test(document.getElementById('hotspot-summary')?.textContent || ''));
  const hotspots = await page.textContent('#hotspot-summary');
  await page.waitForSelector('#areas-table tbody tr');
  const areas = await page.$$eval('#areas-table tbody tr', (r) => r.map((x) => [...x.children].map((c) => c.textContent)));
  // Every incident is inside the configured district and the school's 10 km.
  check(areas.length === 2 && areas.every((a) => Number(a[2]) === total), `areas: ${JSON.stringify(areas)} for ${total}`);
  check(areas.every((a) => Number(a[3]) + Number(a[4]) + Number(a[5]) === Number(a[2])), `the school calendar splits: ${JSON.stringify(areas)}`);
  summary.pages.analytics = { total, weeks, hexes, hotspots, areas };
  await shot(page, 'analytics.png', true);
});

await step('measures', async () => {
  await page.goto(`${base}/#/measures`);
  await page.waitForSelector('#m-alerts');
  // From two years back: the replayed scenes are dated before the live ones.
  await page.fill('#m-from', new Date(Date.now() - 730 * 86400e3).toISOString().slice(0, 10));
  await page.click('form.filters button[type=submit]');
  await page.waitForFunction(() => /^\d{4}-\d\d-\d\d$/.test(document.getElementById('m-from').value));
  await page.waitForTimeout(300);
  await page.waitForSelector('#m-alerts');
  const published = Number((await page.$eval('#m-alerts tbody tr td.num', (td) => td.textContent)).replace(/,/g, ''));
  check(published >= 2, `measures: ${published} alerts published`);
  const field = await page.$$eval('#m-field tbody tr', (r) => r.map((x) => x.textContent));
  check(field.some((t) => /confirmed in the field1/.test(t)), `the outcome recorded is counted: ${field}`);
  const bars = await page.$$eval('#latency-histogram rect', (r) => r.length);
  check(bars === 8, `latency histogram: ${bars} bins`);
  const csv = await page.$eval('#m-csv', (a) => a.href);
  const text = await page.evaluate(async (u) => (await fetch(u)).text(), csv);
  check(text.startsWith('measure,value,unit') && text.includes(`alerts_published,${published},`), `measures CSV: ${text.slice(0, 80)}`);
  summary.pages.measures = { published, bars };
  await shot(page, 'measures.png', true);
});

await step('public view', async () => {
  await page.goto(`${base}/#/public`);
  await page.waitForFunction(() => /block/.test(document.getElementById('public-info')?.textContent || ''));
  const blocks = await page.$$eval('#public-map path.leaflet-interactive', (p) => p.length);
  check(blocks >= 1, 'the public view shows no block');
  summary.pages.public_blocks = blocks;
  await shot(page, 'public.png');
  await page.selectOption('#public-grid', 'cells');
  await page.waitForFunction(() => /hexagon/.test(document.getElementById('public-info')?.textContent || ''));
  const cells = await page.$$eval('#public-map path.leaflet-interactive', (p) => p.length);
  check(cells >= 1, 'the public view shows no hexagon');
  summary.pages.public_cells = cells;
});
await admin.ctx.close();

// ---- roles: each sees what it may ----------------------------------------------
for (const [name, expected, home] of [
  ['analyst', ['Analytics', 'Measures', 'Public view'], '#/analytics'],
  ['public', ['Public view'], '#/public'],
  ['dispatcher', ['Live', 'Sensors', 'Analytics', 'Measures', 'Public view'], '#/'],
  ['reviewer', ['Live', 'Review', 'Sensors', 'Analytics', 'Measures', 'Public view'], '#/'],
]) {
  await step(`role ${name}`, async () => {
    const c = await context(name, desktop);
    await login(c.page, name);
    const nav = await navText(c.page);
    check(JSON.stringify(nav) === JSON.stringify(expected), `${name} nav: ${nav}`);
    check((await c.page.evaluate(() => location.hash)) === home, `${name} lands on ${await c.page.evaluate(() => location.hash)}`);
    // A page the role may not open sends it home, and nothing was asked for.
    await c.page.goto(`${base}/#/sensors`);
    if (!expected.includes('Sensors')) {
      await c.page.waitForFunction((h) => location.hash === h, home);
      check(!c.requests.some((u) => u.includes('/v1/sensors') || u.includes('/v1/coverage')), `${name} fetched sensor positions`);
    }
    // An incident: only roles with the audio permission fetch clips, and
    // only those with the review permission get the form.
    if (expected.includes('Analytics') && incidentId) {
      await c.page.goto(`${base}/#/incident/${encodeURIComponent(incidentId)}`);
      await c.page.waitForSelector('#shots tbody tr');
      const audio = name === 'reviewer';
      if (audio) await c.page.waitForSelector('figure.clip[data-state="drawn"]');
      else await c.page.waitForTimeout(500);
      const fetched = c.requests.some((u) => /\/clips?(\?|$)/.test(new URL(u).pathname + '?'));
      check(fetched === audio, `${name} ${fetched ? 'fetched' : 'did not fetch'} audio`);
      check(Boolean(await c.page.$('#review-form')) === (name === 'reviewer'), `${name}: review form shown wrongly`);
      await c.page.waitForSelector('#outcome-box h2');
      check(Boolean(await c.page.$('#outcome-form')) === (name !== 'analyst'), `${name}: outcome form shown wrongly`);
      // Without the evidence permission the arrivals are not in the page.
      const arrivals = await c.page.$$('#arrivals tbody tr');
      check((arrivals.length > 0) === (name === 'reviewer'), `${name} sees ${arrivals.length} arrivals`);
    }
    await c.ctx.close();
  });
}

await step('nobody logged in', async () => {
  const c = await context('anonymous', desktop);
  await c.page.goto(`${base}/`);
  await c.page.waitForFunction(() => location.hash === '#/public');
  await c.page.waitForFunction(() => /block/.test(document.getElementById('public-info')?.textContent || ''));
  const nav = await navText(c.page);
  check(JSON.stringify(nav) === '["Public view"]', `anonymous nav: ${nav}`);
  const leaked = c.requests.filter((u) => /\/v1\/(sensors|incidents|coverage|pulses|alerts|analytics)/.test(u) || u.includes('/clip'));
  check(leaked.length === 0, `anonymous fetched ${leaked}`);
  await c.page.goto(`${base}/#/sensors`);
  await c.page.waitForSelector('#name');
  await c.ctx.close();
});

// ---- a dispatcher on a phone -------------------------------------------------------
await step('phone', async () => {
  const c = await context('phone', phone);
  await login(c.page, 'dispatcher');
  await c.page.waitForSelector('#live-list li');
  await fitsWidth(c.page, 'phone live view');
  const box = await c.page.$eval('#live-map', (m) => m.getBoundingClientRect().width);
  check(box > 300, `phone map ${box} px wide`);
  await shot(c.page, 'phone-live.png');
  await c.page.click('#live-list li a');
  await c.page.waitForSelector('#shots tbody tr');
  await fitsWidth(c.page, 'phone incident page');
  // A dispatcher gets places, not audio or the review form.
  check(!(await c.page.$('#review-form')) && !(await c.page.$('figure.clip')), 'dispatcher sees review or audio');
  await shot(c.page, 'phone-incident.png');
  await c.ctx.close();
  const r = await context('phone-reviewer', phone);
  await login(r.page, 'reviewer');
  await r.page.goto(`${base}/#/queue`);
  await r.page.waitForSelector('#queue tbody tr');
  await fitsWidth(r.page, 'phone review queue');
  await shot(r.page, 'phone-queue.png');
  await r.ctx.close();
});

await browser.close();
summary.problems = problems;
console.log(JSON.stringify(summary));
process.exit(problems.length ? 1 : 0);
