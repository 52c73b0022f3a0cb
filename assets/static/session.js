// Session page shell: takes the launch ticket from the URL fragment, loads
// the protocol's client, and drives the toolbar, panels and states.
import { humanSize } from './files-panel.js';
const root = document.getElementById('session');
const ds = root.dataset;
const base = ds.base;
const stateEl = document.getElementById('state');
const overlay = document.getElementById('overlay');

let ticket = new URLSearchParams(location.hash.slice(1)).get('ticket') || '';
// The vocabulary: what the page says for each reason a session ends
// (from the gateway, which keeps the technical detail in its log).
const vocab = JSON.parse(ds.messages || '{}');
const codes = vocab._codes || {};
// The ticket is single-use: keep it out of history and reloads.
history.replaceState(null, '', location.pathname);

export const ui = {
  setState(text, cls = '') {
    stateEl.textContent = text;
    stateEl.className = 'state ' + cls;
    document.body.dataset.state = cls || 'connecting';
  },
  // show puts up the overlay with the vocabulary's message for reason.
  show(reason) {
    const m = vocab[reason] || vocab.failed || { title: 'Disconnected', text: '' };
    ui.setState(m.title, 'off');
    document.body.dataset.reason = reason;
    document.getElementById('overlay-title').textContent = m.title;
    document.getElementById('overlay-msg').textContent = m.text;
    document.getElementById('overlay-retry').hidden = true;
    overlay.hidden = false;
  },
  // ended reports the end of the current attempt: code is the WebSocket
  // close code when the client library shows it, connected whether the
  // session was up, guess the protocol client's own reason (e.g. RDP's
  // "credentials" from NLA, which the gateway cannot see). The gateway's
  // reason wins; without one, a session that was up lost the network.
  async ended({ code = 0, connected = false, guess = '', reason = '' } = {}) {
    const attempt = ui.page;
    if (ended.has(attempt)) return;
    ended.add(attempt);
    if (userEnded) { ui.show('user'); return; }
    reason = reason || codes[code] || await askGateway(attempt);
    if (!connected && guess && (!reason || reason === 'host-ended' || reason === 'network')) reason = guess;
    if (!reason) reason = connected ? 'network' : 'host-unreachable';
    if (vocab[reason]?.reconnect && everConnected) { retry(reason); return; }
    ui.show(reason);
  },
  connected() {
    everConnected = true;
    attempts = 0;
    ui.setState('Connected', 'on');
  },
  wsURL(kind, t) {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    return `${proto}//${location.host}${base}/relay/${kind}?ticket=${encodeURIComponent(t)}&page=${encodeURIComponent(ui.page)}`;
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

const ended = new Set();
let userEnded = false;
let everConnected = false;
let attempts = 0;
let retryTimer = null;

// askGateway asks why the attempt's session ended; a gateway that cannot
// be reached means the network is gone.
async function askGateway(attempt) {
  try {
    const ctl = new AbortController();
    setTimeout(() => ctl.abort(), 5000);
    const r = await fetch(`${base}/api/session-end/${encodeURIComponent(attempt)}`, { cache: 'no-store', signal: ctl.signal });
    const body = await r.json();
    return body.reason || '';
  } catch {
    return 'network';
  }
}

// retry counts down to a reconnect with a fresh ticket; Cancel stops it.
function retry(reason) {
  ui.show(reason);
  attempts++;
  if (attempts > 5) return;
  let left = Math.min(30, 2 ** attempts + 3);
  document.body.dataset.state = 'retry';
  const box = document.getElementById('overlay-retry');
  const count = document.getElementById('overlay-countdown');
  box.hidden = false;
  const tick = () => {
    count.textContent = `Reconnecting in ${left} s…`;
    if (left-- <= 0) { retryTimer = null; box.hidden = true; connect(); return; }
    retryTimer = setTimeout(tick, 1000);
  };
  tick();
}
document.getElementById('btn-cancel-retry').addEventListener('click', () => {
  clearTimeout(retryTimer);
  retryTimer = null;
  document.getElementById('overlay-retry').hidden = true;
  document.body.dataset.state = 'off';
});

async function newTicket() {
  const id = location.pathname.split('/').pop();
  let r;
  try {
    r = await fetch(`${base}/api/launch/${encodeURIComponent(id)}`, { method: 'POST', headers: { 'X-CSRF-Token': ds.csrf } });
  } catch {
    throw Object.assign(new Error('network'), { reason: 'network' });
  }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    const reason = r.status === 401 ? 'signed-out' : r.status === 403 || r.status === 404 ? 'access-removed' : 'failed';
    throw Object.assign(new Error(reason), { reason });
  }
  return new URLSearchParams(body.url.split('#')[1]).get('ticket');
}

let client = null;
async function connect() {
  clearTimeout(retryTimer);
  overlay.hidden = true;
  userEnded = false;
  ui.page = crypto.randomUUID();
  ui.setState('Connecting…');
  if (!ticket) {
    try { ticket = await newTicket(); } catch (e) {
      if (e.reason === 'network' && everConnected) retry('network'); else ui.show(e.reason || 'failed');
      return;
    }
  }
  const t = ticket;
  ticket = '';
  try { client?.disconnect?.(); } catch { /* the old client is gone already */ }
  const screen = document.getElementById('screen');
  screen.replaceChildren();
  const mod = await import(new URL(`session-${ds.protocol}.js`, import.meta.url).href);
  client = await mod.start(screen, t, ui);
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
  userEnded = true;
  clearTimeout(retryTimer);
  client?.disconnect?.();
  ui.show('user');
});
document.getElementById('btn-reconnect').addEventListener('click', () => connect());

connect().catch((e) => { console.error('session start failed', e); ui.show('failed'); });
