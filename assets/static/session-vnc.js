// VNC in the browser: noVNC speaks RFB over the gateway's WebSocket relay.
// The gateway already authenticated to the host; the browser sees a
// no-password RFB server and never the host's password.
export async function start(screen, ticket, ui) {
  const { default: RFB } = await import(ui.urls.novnc);
  const rfb = new RFB(screen, ui.wsURL('vnc', ticket), { shared: true });
  rfb.scaleViewport = true;
  rfb.resizeSession = false;
  rfb.focusOnClick = true;
  let connected = false;
  let guess = '';
  rfb.addEventListener('connect', () => {
    connected = true;
    ui.connected();
    screen.focus();
  });
  // noVNC hides the WebSocket close code: the page asks the gateway why.
  rfb.addEventListener('disconnect', () => ui.ended({ connected, guess }));
  rfb.addEventListener('securityfailure', () => { guess = 'credentials'; });
  if (ui.allow.clipToClient) {
    rfb.addEventListener('clipboard', (ev) => ui.remoteClipboard(ev.detail.text));
  }
  window.__portico = { rfb };
  return {
    sendClipboard(text) {
      if (!ui.allow.clipToServer) return false;
      rfb.clipboardPasteFrom(text);
      return true;
    },
    disconnect() { rfb.disconnect(); },
    ctrlAltDel() { rfb.sendCtrlAltDel(); },
  };
}
