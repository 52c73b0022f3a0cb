// SSH in the browser: xterm.js draws the terminal; the gateway is the SSH
// client. Binary WebSocket messages carry terminal bytes both ways; text
// messages carry JSON control ({"type":"resize"} from here, {"type":"exit"}
// and {"type":"session"} from the gateway).
import { filesPanel, httpFilesBackend } from './files-panel.js';

export async function start(screen, ticket, ui) {
  const css = document.createElement('link');
  css.rel = 'stylesheet';
  css.href = ui.urls.xtermCss;
  document.head.append(css);
  const { Terminal } = await import(ui.urls.xterm);
  const { FitAddon } = await import(ui.urls.xtermFit);
  const term = new Terminal({ cursorBlink: true, fontFamily: 'ui-monospace, Menlo, Consolas, monospace', fontSize: 14, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  term.open(screen);
  fit.fit();
  // Copy and paste follow the effective clipboard directions. Pasted text
  // reaches the host as typing, which the gateway cannot tell apart, so
  // this is enforced in the page only (the README's enforcement table says
  // so). Capturing on the screen stops the event before xterm's textarea.
  const block = (type, allowed, text) => screen.addEventListener(type, (ev) => {
    if (allowed) return;
    ev.preventDefault();
    ev.stopPropagation();
    ui.setState(text, 'on');
  }, true);
  block('paste', ui.allow.clipToServer, 'Connected · pasting is not allowed in this session');
  block('copy', ui.allow.clipToClient, 'Connected · copying is not allowed in this session');
  block('cut', ui.allow.clipToClient, 'Connected · copying is not allowed in this session');

  const ws = new WebSocket(ui.wsURL('ssh', ticket) + `&cols=${term.cols}&rows=${term.rows}`);
  ws.binaryType = 'arraybuffer';
  const enc = new TextEncoder();
  let sid = '';
  let open = false;
  let exited = false;

  ws.onopen = () => { open = true; ui.connected(); term.focus(); };
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      let m;
      try { m = JSON.parse(ev.data); } catch { return; }
      if (m.type === 'session') sid = m.id;
      if (m.type === 'exit') { exited = true; ui.ended({ reason: 'host-ended' }); }
      return;
    }
    term.write(new Uint8Array(ev.data));
  };
  // The close code carries the gateway's reason (never its detail).
  ws.onclose = (ev) => { if (!exited) ui.ended({ code: ev.code, connected: open }); };
  term.onData((d) => { if (ws.readyState === 1) ws.send(enc.encode(d)); });
  term.onBinary((d) => { if (ws.readyState === 1) ws.send(Uint8Array.from(d, (c) => c.charCodeAt(0))); });
  const resize = () => {
    fit.fit();
    if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'resize', cols: term.cols, rows: term.rows }));
  };
  new ResizeObserver(resize).observe(screen);
  term.onResize(({ cols, rows }) => { if (ws.readyState === 1) ws.send(JSON.stringify({ type: 'resize', cols, rows })); });

  // The Files panel lists, uploads and downloads over the portal's files
  // API for this session (its id arrives in the first control message).
  const panel = filesPanel({
    list: (dir) => (sid ? backend().list(dir) : Promise.reject(new Error('The session is still starting: try again in a moment.'))),
    downloadURL: (path) => backend().downloadURL(path),
    upload: (dir, file, onProgress) => backend().upload(dir, file, onProgress),
  }, ui.allow);
  const backend = () => httpFilesBackend(`${ui.base}/api/files/${sid}`, ui.csrf);
  window.__portico = { term, ws, get sid() { return sid; } };
  return {
    refreshFiles: panel.refresh, upload: panel.upload,
    disconnect() { ws.close(1000, 'user disconnected'); },
  };
}
