// Resource list: search filter, launch (ticket request), optional new tab,
// and the client IP detection report.
import { initNative, nativeLaunch } from './native.js';

const home = document.getElementById('home');
const base = home.dataset.base;
const csrf = home.dataset.csrf;
const errBox = document.getElementById('launch-error');

function showError(msg) {
  errBox.textContent = msg;
  errBox.hidden = false;
}

// launch asks the gateway how to open a resource; inBrowser accepts the
// native-with-fallback offer of the browser for this launch.
async function launch(id, newTab, inBrowser) {
  errBox.hidden = true;
  // Open the tab synchronously (inside the click) so pop-up blockers allow it.
  const tab = newTab ? window.open('about:blank', '_blank') : null;
  let res;
  try {
    res = await fetch(`${base}/api/launch/${encodeURIComponent(id)}${inBrowser ? '?method=browser' : ''}`, {
      method: 'POST', headers: { 'X-CSRF-Token': csrf, 'Accept': 'application/json' }, credentials: 'same-origin',
    });
  } catch (e) {
    tab?.close();
    showError('The gateway did not answer. Check your connection and try again.');
    return;
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    tab?.close();
    if (res.status === 401) { location.reload(); return; }
    showError(body.error || `Launch failed (${res.status}).`);
    return;
  }
  if (body.action && body.action !== 'browser') {
    tab?.close();
    nativeLaunch(id, newTab, body);
    return;
  }
  if (tab) { tab.opener = null; tab.location = body.url; } else { location.assign(body.url); }
}

// "Download .rdp": the file carries a fresh single-use ticket, so it is
// fetched with the CSRF token and saved from a blob.
async function downloadRDP(id) {
  errBox.hidden = true;
  let res;
  try {
    res = await fetch(`${base}/api/launch/${encodeURIComponent(id)}/rdp-file`, {
      method: 'POST', headers: { 'X-CSRF-Token': csrf }, credentials: 'same-origin',
    });
  } catch (e) {
    showError('The gateway did not answer. Check your connection and try again.');
    return;
  }
  if (!res.ok) {
    const body = await res.json().catch(() => ({}));
    showError(body.error || `Download failed (${res.status}).`);
    return;
  }
  const name = /filename="([^"]+)"/.exec(res.headers.get('Content-Disposition') || '')?.[1] || 'session.rdp';
  const a = document.createElement('a');
  a.href = URL.createObjectURL(await res.blob());
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

document.getElementById('resources')?.addEventListener('click', (ev) => {
  const file = ev.target.closest('button[data-rdpfile]');
  if (file) { downloadRDP(file.dataset.rdpfile); return; }
  const btn = ev.target.closest('button[data-id]');
  if (btn) launch(btn.dataset.id, btn.dataset.newtab === '1');
});

initNative({ base, csrf, relaunch: launch });

const filter = document.getElementById('filter');
filter?.addEventListener('input', () => {
  const q = filter.value.trim().toLowerCase();
  let shown = 0;
  for (const li of document.querySelectorAll('#resources .res')) {
    const hit = li.dataset.name.toLowerCase().includes(q);
    li.hidden = !hit;
    if (hit) shown++;
  }
  for (const g of document.querySelectorAll('#resources .group')) g.hidden = !g.querySelector('.res:not([hidden])');
  document.getElementById('no-match').hidden = shown > 0;
});

// Client IP detection: ask the configured service for our public IP and
// report it to the gateway (recorded with our sessions and in the audit log).
const ipURL = home.dataset.ipdetect;
if (ipURL) {
  (async () => {
    try {
      const ctl = new AbortController();
      setTimeout(() => ctl.abort(), 5000);
      const r = await fetch(ipURL, { signal: ctl.signal, credentials: 'omit', cache: 'no-store' });
      const text = (await r.text()).trim();
      let ip = text;
      try { ip = JSON.parse(text).ip || text; } catch { /* plain text answer */ }
      await fetch(`${base}/api/client-ip`, {
        method: 'POST', headers: { 'X-CSRF-Token': csrf, 'Content-Type': 'application/json' },
        body: JSON.stringify({ ip: String(ip).slice(0, 64) }),
      });
    } catch (e) {
      console.warn('client IP detection failed', e);
    }
  })();
}

// Sign-out closes this sign-in's live sessions in every tab: say so first.
const signOut = document.querySelector('form[action$="/signout"]');
signOut?.addEventListener('submit', async (ev) => {
  if (signOut.dataset.confirmed) return;
  ev.preventDefault();
  let n = 0;
  try {
    const r = await fetch(`${base}/api/live-sessions`, { headers: { Accept: 'application/json' } });
    n = (await r.json()).count || 0;
  } catch { /* sign out anyway */ }
  if (n === 0) { signOut.dataset.confirmed = '1'; signOut.submit(); return; }
  const box = document.getElementById('signout-confirm');
  document.getElementById('signout-msg').textContent = n === 1 ? 'Signing out closes your open session.' : `Signing out closes your ${n} open sessions.`;
  box.hidden = false;
  document.getElementById('signout-yes').focus();
});
document.getElementById('signout-yes')?.addEventListener('click', () => { signOut.dataset.confirmed = '1'; signOut.submit(); });
document.getElementById('signout-no')?.addEventListener('click', () => { document.getElementById('signout-confirm').hidden = true; });

// The list's buttons work from here on (module scripts run after the page
// is shown): tests, and anything else that clicks, wait for this.
document.body.dataset.ready = 'portal';
