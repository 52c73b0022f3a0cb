// Session page shell: takes the launch ticket from the URL fragment, loads
// the protocol's client, and drives the toolbar, panels and states.
const root = document.getElementById('session');
const ds = root.dataset;
const base = ds.base;
const stateEl = document.getElementById('state');
const overlay = document.getElementById('overlay');

let ticket = new URLSearchParams(location.hash.slice(1)).get('ticket') || '';
// The ticket is single-use: keep it out of history and reloads.
history.replaceState(null, '', location.pathname);

export const ui = {
  setState(text, cls = '') {
    stateEl.textContent = text;
    stateEl.className = 'state ' + cls;
    document.body.dataset.state = cls || 'connecting';
  },
  disconnected(title, msg) {
    ui.setState(title, 'off');
    document.getElementById('overlay-title').textContent = title;
    document.getElementById('overlay-msg').textContent = msg;
    overlay.hidden = false;
  },
  wsURL(kind, t) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}${base}/relay/${kind}?ticket=${encodeURIComponent(t)}`;
  },
  remoteClipboard(text) {
    const box = document.getElementById('clip-remote');
    if (box) box.value = text;
    document.body.dataset.remoteClip = String(text.length);
  },
  base, csrf: ds.csrf,
  allow: {
    clipToServer: ds.clipToServer === 'true', clipToClient: ds.clipToClient === 'true',
    upload: ds.upload === 'true', download: ds.download === 'true',
  },
  urls: { novnc: ds.novnc, xterm: ds.xterm, xtermFit: ds.xtermFit, xtermCss: ds.xtermCss, ironrdp: ds.ironrdp },
  rdpUser: ds.rdpUser,
  // false: the gateway signs in to the host; the page asks nothing.
  credssp: ds.credssp !== 'false',
};

async function newTicket() {
  const id = location.pathname.split('/').pop();
  const r = await fetch(`${base}/api/launch/${encodeURIComponent(id)}`, { method: 'POST', headers: { 'X-CSRF-Token': ds.csrf } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error(body.error || `launch failed (${r.status})`);
  return new URLSearchParams(body.url.split('#')[1]).get('ticket');
}

let client = null;
async function connect() {
  overlay.hidden = true;
  ui.setState('Connecting…');
  if (!ticket) {
    try { ticket = await newTicket(); } catch (e) { ui.disconnected('Cannot connect', e.message); return; }
  }
  const t = ticket;
  ticket = '';
  const mod = await import(new URL(`session-${ds.protocol}.js`, import.meta.url).href);
  client = await mod.start(document.getElementById('screen'), t, ui);
}

function toggle(btnId, panelId) {
  const btn = document.getElementById(btnId);
  const panel = document.getElementById(panelId);
  btn?.addEventListener('click', () => {
    panel.hidden = !panel.hidden;
    btn.setAttribute('aria-expanded', String(!panel.hidden));
    if (!panel.hidden && panelId === 'panel-files') client?.refreshFiles?.();
  });
}
toggle('btn-clip', 'panel-clip');
toggle('btn-files', 'panel-files');

document.getElementById('clip-send')?.addEventListener('click', () => {
  client?.sendClipboard?.(document.getElementById('clip-local').value);
});
document.getElementById('clip-copy')?.addEventListener('click', async () => {
  try { await navigator.clipboard.writeText(document.getElementById('clip-remote').value); } catch { /* needs a user gesture / permission */ }
});
document.getElementById('file-up')?.addEventListener('change', (ev) => client?.upload?.(ev.target.files));
document.getElementById('btn-cad')?.addEventListener('click', () => client?.ctrlAltDel?.());
document.getElementById('btn-full').addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen(); else root.requestFullscreen?.();
});
document.getElementById('btn-disconnect').addEventListener('click', () => {
  client?.disconnect?.();
  ui.disconnected('Disconnected', 'You ended the session.');
});
document.getElementById('btn-reconnect').addEventListener('click', () => connect());

connect().catch((e) => ui.disconnected('Cannot connect', String(e.message || e)));
