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
  // pageID names this page's file panel where the protocol's stream has
  // no room for a session ID (RDP).
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

// The file panel: one API for every protocol with file transfer
// (/api/files/{id}); the protocol's client only names the session.
const files = (() => {
  const api = `${base}/api/files/`;
  const msg = document.getElementById('file-msg');
  const bar = document.getElementById('file-progress');
  let cwd = '.';
  let seen = 0;
  let uploads = 0;
  const id = () => client?.filesID?.() || '';
  const say = (text) => { if (msg) msg.textContent = text; document.body.dataset.fileMsg = text; };
  const join = (dir, name) => (dir === '.' ? name : `${dir}/${name}`);
  const link = (name, size, label) => {
    const a = document.createElement('a');
    a.href = `${api}${id()}/download?name=${encodeURIComponent(name)}`;
    a.textContent = label || name.split('/').pop();
    a.download = name.split('/').pop();
    const li = document.createElement('li');
    li.append(a, ` (${size} bytes)`);
    return li;
  };
  async function refresh() {
    const list = document.getElementById('file-list');
    if (!list || !id()) return;
    const r = await fetch(`${api}${id()}?dir=${encodeURIComponent(cwd)}`, { headers: { Accept: 'application/json' } });
    const body = await r.json().catch(() => ({}));
    list.replaceChildren();
    if (!r.ok) { list.append(Object.assign(document.createElement('li'), { textContent: body.error || 'Cannot list files.' })); return; }
    if (cwd !== '.') {
      const up = Object.assign(document.createElement('button'), { type: 'button', className: 'link', textContent: '↑ Up' });
      up.onclick = () => { cwd = cwd.includes('/') ? cwd.slice(0, cwd.lastIndexOf('/')) : '.'; refresh(); };
      const li = document.createElement('li');
      li.append(up);
      list.append(li);
    }
    for (const f of body) {
      if (f.dir) {
        const b = Object.assign(document.createElement('button'), { type: 'button', className: 'link', textContent: f.name + '/' });
        b.onclick = () => { cwd = join(cwd, f.name); refresh(); };
        const li = document.createElement('li');
        li.append(b);
        list.append(li);
      } else {
        list.append(link(join(cwd, f.name), f.size));
      }
    }
  }
  // send posts one file with a progress bar (fetch cannot report upload
  // progress; XMLHttpRequest can).
  function send(f) {
    return new Promise((resolve) => {
      const x = new XMLHttpRequest();
      x.open('POST', `${api}${id()}?dir=${encodeURIComponent(cwd)}&name=${encodeURIComponent(f.name)}`);
      x.setRequestHeader('X-CSRF-Token', ui.csrf);
      x.setRequestHeader('Content-Type', 'application/octet-stream');
      x.upload.onprogress = (e) => { if (e.lengthComputable) { bar.max = e.total; bar.value = e.loaded; } };
      x.onload = () => { let b = {}; try { b = JSON.parse(x.responseText); } catch { /* not JSON */ } resolve({ ok: x.status < 300, body: b }); };
      x.onerror = () => resolve({ ok: false, body: { error: 'The upload was interrupted: check the connection and try again.' } });
      x.send(f);
    });
  }
  async function upload(fileList) {
    if (!ui.allow.upload) return;
    if (!id()) { say('The session is not connected yet: upload when it is.'); return; }
    for (const f of fileList) {
      bar.hidden = false;
      bar.value = 0;
      say(`Uploading ${f.name}…`);
      const r = await send(f);
      bar.hidden = true;
      if (!r.ok) { say(r.body.error || `Upload of ${f.name} failed.`); return; }
      uploads++;
      document.body.dataset.uploads = String(uploads);
      say(`${f.name} uploaded (${r.body.size} bytes).`);
    }
    refresh();
  }
  // Files the host saves in the drive's Download folder are offered at
  // once: the panel opens with a link for each.
  async function poll() {
    if (!id()) return;
    const r = await fetch(`${api}${id()}/offers?after=${seen}`, { headers: { Accept: 'application/json' } }).catch(() => null);
    if (!r?.ok) return;
    const body = await r.json().catch(() => ({ offers: [] }));
    const box = document.getElementById('file-offers');
    for (const o of body.offers || []) {
      box?.append(link(o.name, o.size, `${o.name.split('/').pop()} — download`));
      say(`The remote computer saved ${o.name.split('/').pop()}: download it below.`);
    }
    if ((body.offers || []).length) {
      const panel = document.getElementById('panel-files');
      panel.hidden = false;
      document.getElementById('btn-files')?.setAttribute('aria-expanded', 'true');
    }
    seen = body.next ?? seen;
    document.body.dataset.offers = String(seen);
  }
  if (ui.allow.download && ds.protocol === 'rdp') setInterval(poll, 1500);
  // Files dropped onto the session are uploaded like picked ones.
  const screen = document.getElementById('screen');
  if (ui.allow.upload) {
    screen.addEventListener('dragover', (e) => { e.preventDefault(); screen.classList.add('drop'); });
    screen.addEventListener('dragleave', () => screen.classList.remove('drop'));
    screen.addEventListener('drop', (e) => { e.preventDefault(); screen.classList.remove('drop'); upload(e.dataTransfer.files); });
  }
  return { refresh, upload };
})();
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
    if (!panel.hidden && panelId === 'panel-files') files.refresh();
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
document.getElementById('file-up')?.addEventListener('change', (ev) => files.upload(ev.target.files));
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
