// SSH in the browser: xterm.js draws the terminal; the gateway is the SSH
// client. Binary WebSocket messages carry terminal bytes both ways; text
// messages carry JSON control ({"type":"resize"} from here, {"type":"exit"}
// and {"type":"session"} from the gateway).
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

  const files = `${ui.base}/api/files/`;
  async function refreshFiles() {
    const list = document.getElementById('file-list');
    if (!list || !sid) return;
    const r = await fetch(files + sid, { headers: { Accept: 'application/json' } });
    const body = await r.json().catch(() => ({}));
    list.replaceChildren();
    if (!r.ok) { list.append(Object.assign(document.createElement('li'), { textContent: body.error || 'Cannot list files.' })); return; }
    for (const f of body) {
      const li = document.createElement('li');
      if (f.dir) { li.textContent = f.name + '/'; } else {
        const a = document.createElement('a');
        a.href = `${files}${sid}/download?name=${encodeURIComponent(f.name)}`;
        a.textContent = f.name;
        a.download = f.name;
        li.append(a, ` (${f.size} bytes)`);
      }
      list.append(li);
    }
  }
  async function upload(fileList) {
    const bar = document.getElementById('file-progress');
    for (const f of fileList) {
      bar.hidden = false;
      const r = await fetch(`${files}${sid}?name=${encodeURIComponent(f.name)}`, { method: 'POST', headers: { 'X-CSRF-Token': ui.csrf, 'Content-Type': 'application/octet-stream' }, body: f });
      const body = await r.json().catch(() => ({}));
      bar.hidden = true;
      if (!r.ok) { alert(body.error || `Upload of ${f.name} failed.`); return; }
    }
    refreshFiles();
  }
  window.__portico = { term, ws, get sid() { return sid; } };
  return {
    refreshFiles, upload,
    disconnect() { ws.close(1000, 'user disconnected'); },
  };
}
