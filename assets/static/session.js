// Session page shell: takes the launch ticket from the URL fragment, loads
// the protocol's client, and drives the toolbar, panels and states.
import { humanSize } from './files-panel.js';
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
  // data-credssp="false": the RDP page connects without CredSSP and asks
  // for no credentials (see session-rdp.js); absent means CredSSP.
  credssp: ds.credssp !== 'false',
  // pageID names this page's Files panel where the protocol's stream has
  // no room for a session ID (RDP: the gateway serves the session's drive
  // and files API under it).
  pageID: Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join(''),
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

// The clipboard buttons say what they did: a silent button looks broken.
const clipStatus = (text) => { const s = document.getElementById('clip-status'); if (s) s.textContent = text; };
document.getElementById('clip-send')?.addEventListener('click', async () => {
  const text = document.getElementById('clip-local').value;
  if (!text) { clipStatus('Nothing to send: type or paste text into the box first.'); return; }
  let sent;
  try { sent = await client?.sendClipboard?.(text); } catch { sent = false; }
  clipStatus(sent === false || !client?.sendClipboard ? 'Could not send: the session is not connected.' : `Sent ${text.length} characters to the remote computer's clipboard.`);
});
document.getElementById('clip-copy')?.addEventListener('click', async () => {
  const text = document.getElementById('clip-remote').value;
  if (!text) { clipStatus('Nothing to copy yet: copy something on the remote computer first.'); return; }
  try {
    await navigator.clipboard.writeText(text);
    clipStatus(`Copied ${text.length} characters to this device's clipboard.`);
  } catch {
    document.getElementById('clip-remote').select();
    clipStatus('This browser did not allow copying: the text is selected, press Ctrl+C (⌘C on a Mac).');
  }
});
document.getElementById('file-up')?.addEventListener('change', (ev) => {
  const files = [...ev.target.files];
  ev.target.value = ''; // choosing the same file again is a new upload
  client?.upload?.(files);
});
// Files dropped onto the session are uploaded like picked ones.
if (ui.allow.upload) {
  const screen = document.getElementById('screen');
  screen.addEventListener('dragover', (e) => { e.preventDefault(); screen.classList.add('drop'); });
  screen.addEventListener('dragleave', () => screen.classList.remove('drop'));
  screen.addEventListener('drop', (e) => {
    e.preventDefault();
    screen.classList.remove('drop');
    client?.upload?.([...e.dataTransfer.files]);
  });
}
// Files an RDP host saves in its drive's Download folder are offered at
// once: the panel opens with a download link for each.
if (ui.allow.download && ds.protocol === 'rdp') {
  const api = `${base}/api/files/${ui.pageID}`;
  let seen = 0;
  setInterval(async () => {
    const r = await fetch(`${api}/offers?after=${seen}`, { headers: { Accept: 'application/json' } }).catch(() => null);
    if (!r?.ok) return;
    const body = await r.json().catch(() => ({}));
    const offers = body.offers || [];
    const box = document.getElementById('file-offers');
    for (const o of offers) {
      const name = o.name.split('/').pop();
      const a = Object.assign(document.createElement('a'), { href: `${api}/download?name=${encodeURIComponent(o.name)}`, download: name, textContent: `${name} — download` });
      const li = document.createElement('li');
      li.append(a, ` (${humanSize(o.size)})`);
      box?.append(li);
    }
    if (offers.length) {
      const status = document.getElementById('file-status');
      if (status) status.textContent = `The remote computer saved ${offers.map((o) => o.name.split('/').pop()).join(', ')}: download below.`;
      document.getElementById('panel-files').hidden = false;
      document.getElementById('btn-files')?.setAttribute('aria-expanded', 'true');
      client?.refreshFiles?.();
    }
    seen = body.next ?? seen;
    document.body.dataset.offers = String(seen);
  }, 1500);
}
// Ctrl+Alt+Del cannot be typed into a browser (the local OS takes it):
// each protocol's client implements ctrlAltDel() (noVNC's sendCtrlAltDel;
// the RDP page sends the scancodes).
document.getElementById('btn-cad')?.addEventListener('click', () => {
  client?.ctrlAltDel?.();
  document.getElementById('screen').focus();
});

// Fullscreen covers the whole page, toolbar included; the toolbar then
// folds away behind a small handle at the top (and Ctrl+Alt+Shift, as in
// Guacamole), so the remote screen gets all the room and the controls stay
// reachable.
const toolbar = document.getElementById('toolbar');
const handle = document.getElementById('toolbar-handle');
function showToolbar(show) {
  toolbar.classList.toggle('folded', !show);
  handle.setAttribute('aria-expanded', String(show));
  handle.textContent = show ? '▴ Hide toolbar' : '▾ Session';
}
document.addEventListener('fullscreenchange', () => {
  const full = !!document.fullscreenElement;
  document.body.classList.toggle('fullscreen', full);
  handle.hidden = !full;
  document.getElementById('btn-full').textContent = full ? 'Exit fullscreen' : 'Fullscreen';
  showToolbar(!full);
});
handle.addEventListener('click', () => showToolbar(toolbar.classList.contains('folded')));
document.addEventListener('keydown', (ev) => {
  if (ev.ctrlKey && ev.altKey && ev.shiftKey && ['Control', 'Alt', 'Shift'].includes(ev.key) && document.fullscreenElement) {
    showToolbar(toolbar.classList.contains('folded'));
  }
}, true);
document.getElementById('btn-full').addEventListener('click', () => {
  if (document.fullscreenElement) document.exitFullscreen(); else document.documentElement.requestFullscreen?.();
});
document.getElementById('btn-disconnect').addEventListener('click', () => {
  client?.disconnect?.();
  ui.disconnected('Disconnected', 'You ended the session.');
});
document.getElementById('btn-reconnect').addEventListener('click', () => connect());

connect().catch((e) => ui.disconnected('Cannot connect', String(e.message || e)));
