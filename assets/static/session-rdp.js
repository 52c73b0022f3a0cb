// RDP in the browser: IronRDP's web client (wasm) speaks RDCleanPath to the
// gateway, which connects to the host named by the launch ticket and does
// the TLS handshake; NLA then runs end to end in this page. Input is sent
// as Set-1 scancodes (keyboard), scaled coordinates (mouse) and wheel steps.

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

// explain maps a web-client error to the page's vocabulary (see
// session.js): what IronRDP knows that the gateway cannot see (NLA runs
// inside TLS, end to end).
function explain(err, mod) {
  const kind = typeof err?.kind === 'function' ? err.kind() : -1;
  const d = typeof err?.rdcleanpathDetails === 'function' ? err.rdcleanpathDetails() : undefined;
  if (kind === mod.IronErrorKind.WrongPassword || kind === mod.IronErrorKind.LogonFailure || kind === mod.IronErrorKind.AccessDenied) return 'credentials';
  if (d?.httpStatusCode === 401) return 'ticket';
  if (d?.httpStatusCode === 403) return 'access-removed';
  if (d?.wsaErrorCode !== undefined) return 'host-unreachable';
  // 42 (bad_certificate) is what the gateway reports when the host's
  // certificate is not the one it pinned on first use.
  if (d?.tlsAlertCode === 42) return 'host-identity';
  if (d?.tlsAlertCode !== undefined) return 'host-unreachable';
  // A wrong password shows up as the host closing the connection.
  return 'credentials';
}

export async function start(screen, ticket, ui) {
  const mod = await import(ui.urls.ironrdp);
  await mod.default();
  mod.setup('warn');
  const cred = await askCredentials(ui.rdpUser);
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
  const proxy = ui.wsURL('rdp', '') + '&keyboard=' + encodeURIComponent(cred.keyboard);
  let session;
  try {
    const b = new mod.SessionBuilder()
      .username(cred.user).password(cred.pass).destination('portico-ticket').proxyAddress(proxy).authToken(ticket)
      .renderCanvas(canvas).desktopSize(new mod.DesktopSize(w, h))
      // Lets the remote desktop follow the window (MS-RDPEDISP); hosts
      // without the channel keep their size and the canvas scales.
      .extension(new mod.Extension('display_control', true))
      .setCursorStyleCallbackContext(canvas)
      .setCursorStyleCallback(function (style) { this.style.cursor = style || 'default'; });
    if (ui.allow.clipToClient) {
      b.remoteClipboardChangedCallback((data) => {
        for (const item of data.items()) if (item.mimeType() === 'text/plain') ui.remoteClipboard(String(item.value()));
      });
    }
    session = await b.connect();
  } catch (e) {
    ui.ended({ connected: false, guess: explain(e, mod) });
    return {};
  }
  ui.connected();
  canvas.focus();
  // The close code stays inside the wasm client: the page asks the gateway.
  session.run().then(() => ui.ended({ connected: true }))
    .catch((e) => { console.error('RDP session failed:', e?.backtrace?.() ?? e); ui.ended({ connected: true }); });

  const send = (ev) => { const tx = new mod.InputTransaction(); tx.addEvent(ev); session.applyInputs(tx); };
  const pos = (e) => {
    const r = canvas.getBoundingClientRect();
    const scale = Math.min(r.width / canvas.width, r.height / canvas.height);
    const ox = (r.width - canvas.width * scale) / 2, oy = (r.height - canvas.height * scale) / 2;
    return [Math.max(0, Math.round((e.clientX - r.left - ox) / scale)), Math.max(0, Math.round((e.clientY - r.top - oy) / scale))];
  };
  canvas.addEventListener('mousemove', (e) => send(mod.DeviceEvent.mouseMove(...pos(e))));
  canvas.addEventListener('mousedown', (e) => { canvas.focus(); send(mod.DeviceEvent.mouseMove(...pos(e))); send(mod.DeviceEvent.mouseButtonPressed(e.button)); e.preventDefault(); });
  canvas.addEventListener('mouseup', (e) => { send(mod.DeviceEvent.mouseButtonReleased(e.button)); e.preventDefault(); });
  canvas.addEventListener('contextmenu', (e) => e.preventDefault());
  canvas.addEventListener('wheel', (e) => { send(mod.DeviceEvent.wheelRotations(true, -Math.sign(e.deltaY) * 120, mod.RotationUnit.Pixel)); e.preventDefault(); }, { passive: false });
  const key = (down) => (e) => {
    const sc = SC[e.code];
    if (sc === undefined) return;
    send(down ? mod.DeviceEvent.keyPressed(sc) : mod.DeviceEvent.keyReleased(sc));
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

  window.__portico = { session, canvas };
  return {
    sendClipboard(text) {
      if (!ui.allow.clipToServer) return;
      const data = new mod.ClipboardData();
      data.addText('text/plain', text);
      session.onClipboardPaste(data);
    },
    ctrlAltDel() {
      for (const sc of [0x1d, 0x38, 0xe053]) send(mod.DeviceEvent.keyPressed(sc));
      for (const sc of [0xe053, 0x38, 0x1d]) send(mod.DeviceEvent.keyReleased(sc));
    },
    disconnect() { session.shutdown(); },
  };
}
