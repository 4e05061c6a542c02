// The dashboard's shell: who is logged in, the navigation their role allows,
// and a hash router (#/, #/incident/ID, #/queue, #/sensors, #/analytics,
// #/measures, #/public, #/login). The server enforces every permission; the shell only
// leaves out what the role could not open anyway.
import 'leaflet/dist/leaflet.css';
import './style.css';
import { api, h, setTimeZone, failure } from './util.js';
import { livePage } from './live.js';
import { incidentPage } from './incident.js';
import { queuePage } from './queue.js';
import { sensorsPage } from './sensors.js';
import { analyticsPage } from './analytics.js';
import { publicPage } from './public.js';
import { measuresPage } from './measures.js';

const PAGES = [
  { path: '', title: 'Live', may: 'live', page: livePage },
  { path: 'queue', title: 'Review', may: 'review', page: queuePage },
  { path: 'sensors', title: 'Sensors', may: 'sensors', page: sensorsPage },
  { path: 'analytics', title: 'Analytics', may: 'incidents', page: analyticsPage },
  { path: 'measures', title: 'Measures', may: ['incidents', 'community'], page: measuresPage },
  { path: 'public', title: 'Public view', may: null, page: publicPage },
];

const state = { who: null, settings: null, cleanups: [], generation: 0 };

/** Whether the role may: `perm` is one permission, any of a list, or null (anyone). */
function allowed(perm) {
  if (perm === null) return true;
  if (Array.isArray(perm)) return perm.some(allowed);
  return Boolean(state.who && state.who.may.includes(perm));
}

function renderNav() {
  const nav = document.getElementById('nav');
  nav.replaceChildren(...PAGES.filter((p) => allowed(p.may)).map((p) => h('a', { href: `#/${p.path}`, dataset: { path: p.path } }, p.title)));
  const who = document.getElementById('who');
  if (state.who) {
    who.replaceChildren(
      h('span', { class: 'actor' }, `${state.who.actor.replace(/^user:/, '')} (${state.who.role})`),
      ' ',
      h('button', { type: 'button', class: 'link', onclick: logout }, 'Log out'),
    );
  } else {
    who.replaceChildren(h('a', { href: '#/login' }, 'Log in'));
  }
}

async function logout() {
  await api('/v1/session', { method: 'DELETE' }).catch(() => {});
  state.who = null;
  renderNav();
  location.hash = '#/public';
}

function loginPage(root) {
  // After logging in, the page that was asked for (a deep link), else home.
  const wanted = location.hash.startsWith('#/login') ? null : location.hash;
  const name = h('input', { id: 'name', autocomplete: 'username', required: true, placeholder: 'name' });
  const password = h('input', { id: 'password', type: 'password', autocomplete: 'current-password', required: true, placeholder: 'password' });
  const why = h('p', { class: 'error', role: 'alert' });
  const form = h('form', { class: 'login card' },
    h('h1', {}, 'Log in'),
    h('label', {}, 'Name', name),
    h('label', {}, 'Password', password),
    h('button', { type: 'submit' }, 'Log in'),
    why,
    h('p', { class: 'muted' }, 'Without an account you can see the ', h('a', { href: '#/public' }, 'public view'), ': counts by block, delayed, with no exact places, sensors or audio.'));
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      await api('/v1/session', { method: 'POST', body: { name: name.value, password: password.value } });
      state.who = await api('/v1/session');
      renderNav();
      const next = wanted || `#/${home()}`;
      // The same hash fires no hashchange: route by hand.
      if (location.hash === next) route();
      else location.hash = next;
    } catch (e) {
      why.textContent = e.message;
    }
  });
  root.replaceChildren(form);
  name.focus();
}

/** The first page the role may open. */
function home() {
  const p = PAGES.find((x) => x.may !== null && allowed(x.may));
  return p ? p.path : 'public';
}

async function route() {
  // Each navigation is a generation: a page still loading from an earlier
  // one finds itself stale (ctx.alive) and its cleanups run at once.
  state.generation += 1;
  const generation = state.generation;
  for (const f of state.cleanups.splice(0)) {
    try { f(); } catch { /* a page's own cleanup failing must not stop navigation */ }
  }
  const root = document.getElementById('page');
  root.replaceChildren();
  const hash = location.hash.replace(/^#\/?/, '');
  const [path, ...rest] = hash.split('/');
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('current', a.dataset.path === path);
  const alive = () => generation === state.generation;
  const ctx = {
    who: state.who,
    settings: state.settings,
    may: allowed,
    alive,
    onCleanup: (f) => {
      if (alive()) state.cleanups.push(f);
      else f();
    },
    reload: () => { if (alive()) route(); },
  };
  try {
    if (path === 'login') return loginPage(root);
    if (path === 'incident' && rest.length) {
      if (!allowed('incidents')) return loginPage(root);
      return await incidentPage(root, decodeURIComponent(rest.join('/')), ctx);
    }
    const page = PAGES.find((p) => p.path === path);
    if (!page) {
      location.hash = `#/${state.who ? home() : 'public'}`;
      return undefined;
    }
    if (!allowed(page.may)) {
      if (!state.who) return loginPage(root);
      location.hash = `#/${home()}`;
      return undefined;
    }
    return await page.page(root, ctx);
  } catch (e) {
    if (alive()) root.append(failure(e));
    return undefined;
  }
}

async function start() {
  state.settings = await api('/v1/map').catch(() => ({ tiles: null, overlay: null }));
  setTimeZone(state.settings.timezone);
  // The probe answers 200 with a null actor when nobody is logged in.
  const who = await api('/v1/session?probe=true').catch(() => null);
  state.who = who && who.actor ? who : null;
  renderNav();
  window.addEventListener('hashchange', route);
  if (!location.hash || location.hash === '#' || location.hash === '#/') {
    if (!state.who) {
      location.hash = '#/public';
      return;
    }
    if (!allowed('live')) {
      location.hash = `#/${home()}`;
      return;
    }
  }
  await route();
}

start();
