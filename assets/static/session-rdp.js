// RDP in the browser: IronRDP's official web backend
// (@devolutions/iron-remote-desktop-rdp, wasm) speaks RDCleanPath to the
// gateway, which connects to the host named by the launch ticket and does
// the TLS handshake; NLA (CredSSP) then runs end to end in this page unless
// the page says otherwise (data-credssp, below). Input is sent as Set-1
// scancodes (keyboard), scaled coordinates (mouse) and wheel steps.
//
// Contract with the server-side template (portal/templates/session.html,
// attributes on #session):
//   data-ironrdp   URL of the backend module (vendor/ironrdp/…js; the wasm
//                  is fetched next to it);
//   data-rdp-user  the user name to preset (may be empty);
//   data-credssp   "false" when the gateway itself authenticates to the
//                  host (single sign-on): the page then turns CredSSP off
//                  (enableCredssp(false), so only TLS is negotiated), does
//                  not ask for Windows credentials, and connects at once
//                  with data-rdp-user and an empty password. Anything else,
//                  or no attribute, keeps CredSSP and the sign-in prompt.

import { filesPanel, httpFilesBackend } from './files-panel.js';

// DOM KeyboardEvent.code → Set-1 scancode; 0xE0xx marks extended keys.
const SC = {
  Escape: 0x01, Digit1: 0x02, Digit2: 0x03, Digit3: 0x04, Digit4: 0x05, Digit5: 0x06, Digit6: 0x07, Digit7: 0x08, Digit8: 0x09,
  Digit9: 0x0a, Digit0: 0x0b, Minus: 0x0c, Equal: 0x0d, Backspace: 0x0e, Tab: 0x0f, KeyQ: 0x10, KeyW: 0x11, KeyE: 0x12,
  KeyR: 0x13, KeyT: 0x14, KeyY: 0x15, KeyU: 0x16, KeyI: 0x17, KeyO: 0x18, KeyP: 0x19, BracketLeft: 0x1a, BracketRight: 0x1b,
  Enter: 0x1c, ControlLeft: 0x1d, KeyA: 0x1e, KeyS: 0x1f, KeyD: 0x20, KeyF: 0x21, KeyG: 0x22, KeyH: 0x23, KeyJ: 0x24,
  KeyK: 0x25, KeyL: 0x26, Semicolon: 0x27, Quote: 0x28, Backquote: 0x29, ShiftLeft: 0x2a, Backslash: 0x2b, KeyZ: 0x2c,
  KeyX: 0x2d, KeyC: 0x2e, KeyV: 0x2f, KeyB: 0x30, KeyN: 0x31, KeyM: 0x32, Comma: 0x33, Period: 0x34, Slash: 0x35,
  ShiftRight: 0x36, NumpadMultiply: 0x37, AltLeft: 0x38, Space: 0x39, CapsLock: 0x3a, F1: 0x3b, F2: 0x3c, F3: 0x3d,
  F4: 0x3e, F5: 0x3f, F6: 0x40, F7: 0x41, F8: 0x42, F9: 0x43, F10: 0x44, NumLock: 0x45, ScrollLock: 0x46, Numpad7: 0x47,
  Numpad8: 0x48, Numpad9: 0x49, NumpadSubtract: 0x4a, Numpad4: 0x4b, Numpad5: 0x4c, Numpad6: 0x4d, NumpadAdd: 0x4e,
  Numpad1: 0x4f, Numpad2: 0x50, Numpad3: 0x51, Numpad0: 0x52, NumpadDecimal: 0x53, IntlBackslash: 0x56, F11: 0x57, F12: 0x58,
  NumpadEnter: 0xe01c, ControlRight: 0xe01d, NumpadDivide: 0xe035, PrintScreen: 0xe037, AltRight: 0xe038, Home: 0xe047,
  ArrowUp: 0xe048, PageUp: 0xe049, ArrowLeft: 0xe04b, ArrowRight: 0xe04d, End: 0xe04f, ArrowDown: 0xe050, PageDown: 0xe051,
  Insert: 0xe052, Delete: 0xe053, MetaLeft: 0xe05b, MetaRight: 0xe05c, ContextMenu: 0xe05d,
};

// pickLayout preselects the layout used last time, else the browser's
// language, else the first (en-US).
function pickLayout(select) {
  const saved = localStorage.getItem('portico.rdp.keyboard');
  const opts = [...select.options];
  const lang = navigator.language || '';
  const match = opts.find((o) => o.value === saved)
    || opts.find((o) => o.dataset.tag.toLowerCase() === lang.toLowerCase())
    || opts.find((o) => o.dataset.tag.split('-')[0] === lang.split('-')[0]);
  if (match) select.value = match.value;
}

function askCredentials(defaultUser) {
  const box = document.getElementById('rdp-login');
  const form = document.getElementById('rdp-form');
  const user = document.getElementById('rdp-user');
  const pass = document.getElementById('rdp-pass');
  const kbd = document.getElementById('rdp-kbd');
  user.value = defaultUser || '';
  pickLayout(kbd);
  box.hidden = false;
  (user.value ? pass : user).focus();
  return new Promise((resolve) => {
    form.onsubmit = (ev) => {
      ev.preventDefault();
      box.hidden = true;
      localStorage.setItem('portico.rdp.keyboard', kbd.value);
      const v = { user: user.value, pass: pass.value, keyboard: kbd.value };
      pass.value = '';
      resolve(v);
    };
  });
}

// IronErrorKind of iron-remote-desktop (the package does not export the
// enum; kind() returns its number).
const Kind = { General: 0, WrongPassword: 1, LogonFailure: 2, AccessDenied: 3, RDCleanPath: 4, ProxyConnect: 5, NegotiationFailure: 6 };

// RotationUnit.Pixel of DeviceEvent.wheelRotations (not exported either).
const wheelPixels = 0;

// explain maps a web-client error to the page's vocabulary (see
// session.js): what IronRDP knows that the gateway cannot see (NLA runs
// inside TLS, end to end). freerdp and xrdp answer wrong credentials by
// closing the connection instead of sending an NLA error code (Windows
// sends one, which arrives as WrongPassword or LogonFailure), so a plain
// error there means the host refused the sign-in.
function explain(err) {
  const kind = typeof err?.kind === 'function' ? err.kind() : -1;
  const d = typeof err?.rdcleanpathDetails === 'function' ? err.rdcleanpathDetails() : undefined;
  if (kind === Kind.WrongPassword || kind === Kind.LogonFailure || kind === Kind.AccessDenied) return 'credentials';
  // Set by the gateway when it signs in to the host itself.
  if (d?.httpStatusCode === 511) return 'stored-credentials';
  if (d?.httpStatusCode === 428) return 'no-password';
  if (d?.httpStatusCode === 401) return 'ticket';
  if (d?.httpStatusCode === 403) return 'access-removed';
  if (d?.wsaErrorCode !== undefined) return 'host-unreachable';
  // 42 (bad_certificate) is what the gateway reports when the host's
  // certificate is not the one it pinned on first use.
  if (d?.tlsAlertCode === 42) return 'host-identity';
  if (d?.tlsAlertCode !== undefined) return 'host-unreachable';
  if (kind === Kind.NegotiationFailure) return 'host-unreachable';
  // A wrong password shows up as the host closing the connection.
  return 'credentials';
}

// load imports the backend module and starts its wasm, once per page (a
// reconnect reuses it).
let backend;
async function load(url) {
  if (!backend) {
    backend = import(url).then(async (mod) => { await mod.init('warn'); return mod; });
  }
  return backend;
}

// savedLayout is the layout pickLayout would preselect, for a page that
// connects without showing the prompt (no CredSSP).
function savedLayout() {
  const kbd = document.getElementById('rdp-kbd');
  pickLayout(kbd);
  return kbd.value;
}

export async function start(screen, ticket, ui) {
  const mod = await load(ui.urls.ironrdp);
  const { SessionBuilder, DesktopSize, DeviceEvent, InputTransaction, ClipboardData } = mod.Backend;
  const cred = ui.credssp ? await askCredentials(ui.rdpUser) : { user: ui.rdpUser || '', pass: '', keyboard: savedLayout() };
  ui.setState('Connecting…');
  const canvas = document.createElement('canvas');
  canvas.tabIndex = 0;
  canvas.style.cssText = 'width:100%;height:100%;object-fit:contain;display:block;outline:none';
  screen.replaceChildren(canvas);
  const rect = screen.getBoundingClientRect();
  const w = Math.max(640, Math.min(1920, Math.round(rect.width) & ~1));
  const h = Math.max(480, Math.min(1200, Math.round(rect.height) & ~1));
  // The layout travels to the gateway, which writes it into the RDP
  // client data the host uses to pick its keyboard map.
  // files names this page's Files panel: the gateway serves the session's
  // drive and files API under it (the RDP stream cannot tell the page a
  // session ID).
  const proxy = ui.wsURL('rdp', '') + '&keyboard=' + encodeURIComponent(cred.keyboard) + '&files=' + ui.pageID;
  let session;
  try {
    const b = new SessionBuilder()
      .username(cred.user).password(cred.pass).destination('portico-ticket').proxyAddress(proxy).authToken(ticket)
      .renderCanvas(canvas).desktopSize(new DesktopSize(w, h))
      // Lets the remote desktop follow the window (MS-RDPEDISP); hosts
      // without the channel keep their size and the canvas scales.
      .extension(mod.displayControl(true))
      .setCursorStyleCallbackContext(canvas)
      .setCursorStyleCallback(function (style) { this.style.cursor = style || 'default'; });
    if (!ui.credssp) b.extension(mod.enableCredssp(false));
    // The backend opens the clipboard channel only when this callback is
    // set, so it is set for either direction; what the host copies is shown
    // only when server-to-client is allowed (the gateway enforces both
    // directions on the wire in any case). No printer and no file copy:
    // the gateway owns device redirection toward the host.
    if (ui.allow.clipToClient || ui.allow.clipToServer) {
      b.remoteClipboardChangedCallback((data) => {
        if (!ui.allow.clipToClient) return;
        for (const item of data.items()) if (item.mimeType() === 'text/plain') ui.remoteClipboard(String(item.value()));
      });
    }
    session = await b.connect();
  } catch (e) {
    console.error('RDP connect failed:', e?.backtrace?.() ?? e);
    // The error kind, for tests and support (no host detail in it).
    document.body.dataset.rdpErrorKind = String(typeof e?.kind === 'function' ? e.kind() : -1);
    ui.ended({ connected: false, guess: explain(e) });
    return {};
  }

  const send = (ev) => { const tx = new InputTransaction(); tx.addEvent(ev); session.applyInputs(tx); };
  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    const scale = Math.min(r.width / canvas.width, r.height / canvas.height);
    const ox = (r.width - canvas.width * scale) / 2, oy = (r.height - canvas.height * scale) / 2;
    return [Math.max(0, Math.round((e.clientX - r.left - ox) / scale)), Math.max(0, Math.round((e.clientY - r.top - oy) / scale))];
  };
  canvas.addEventListener('mousemove', (e) => send(DeviceEvent.mouseMove(...pos(e))));
  canvas.addEventListener('mousedown', (e) => { canvas.focus(); send(DeviceEvent.mouseMove(...pos(e))); send(DeviceEvent.mouseButtonPressed(e.button)); e.preventDefault(); });
  canvas.addEventListener('mouseup', (e) => { send(DeviceEvent.mouseButtonReleased(e.button)); e.preventDefault(); });
  canvas.addEventListener('contextmenu', (e) => e.preventDefault());
  canvas.addEventListener('wheel', (e) => { send(DeviceEvent.wheelRotations(true, -Math.sign(e.deltaY) * 120, wheelPixels)); e.preventDefault(); }, { passive: false });
  const key = (down) => (e) => {
    const sc = SC[e.code];
    if (sc === undefined) return;
    send(down ? DeviceEvent.keyPressed(sc) : DeviceEvent.keyReleased(sc));
    e.preventDefault();
  };
  canvas.addEventListener('keydown', key(true));
  canvas.addEventListener('keyup', key(false));
  canvas.addEventListener('blur', () => session.releaseAllInputs());

  // Ask the host to match the window after the user stops resizing.
  let resizeTimer;
  const fit = () => {
    const r = screen.getBoundingClientRect();
    const nw = Math.max(640, Math.min(3840, Math.round(r.width) & ~1));
    const nh = Math.max(480, Math.min(2160, Math.round(r.height) & ~1));
    if (nw === canvas.width && nh === canvas.height) return;
    try { session.resize(nw, nh, 100, undefined, undefined); window.__portico.resized = [nw, nh]; } catch (e) { console.warn('resize', e); }
  };
  window.addEventListener('resize', () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(fit, 400); });

  // The Files panel works on the session's Portico drive, which the
  // gateway serves into the session; its listing is offered only when the
  // host's files may reach this page.
  const backend = httpFilesBackend(`${ui.base}/api/files/${ui.pageID}`, ui.csrf);
  const files = filesPanel({
    list: (dir) => (ui.allow.download ? backend.list(dir) : Promise.resolve([])),
    downloadURL: (path) => backend.downloadURL(path),
    upload: (dir, file, onProgress) => backend.upload(dir, file, onProgress),
  }, ui.allow);
  window.__portico = { session, canvas };
  // "Connected" only once the input handlers are in place and the session
  // loop runs, so anything that waits for it can type at once.
  // The close code stays inside the wasm client: the page asks the gateway.
  session.run().then(() => ui.ended({ connected: true }))
    .catch((e) => { console.error('RDP session failed:', e?.backtrace?.() ?? e); ui.ended({ connected: true }); });
  ui.connected();
  canvas.focus();
  return {
    sendClipboard(text) {
      if (!ui.allow.clipToServer) return;
      const data = new ClipboardData();
      data.addText('text/plain', text);
      session.onClipboardPaste(data);
    },
    ctrlAltDel() {
      for (const sc of [0x1d, 0x38, 0xe053]) send(DeviceEvent.keyPressed(sc));
      for (const sc of [0xe053, 0x38, 0x1d]) send(DeviceEvent.keyReleased(sc));
    },
    refreshFiles: files.refresh, upload: files.upload,
    disconnect() { session.shutdown(); },
  };
}
