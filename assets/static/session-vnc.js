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
  rfb.addEventListener('connect', () => {
    connected = true;
    ui.setState('Connected', 'on');
    screen.focus();
  });
  rfb.addEventListener('disconnect', (ev) => {
    if (!connected) {
      ui.disconnected('Cannot connect', 'The gateway could not open the session: the host may be down or refused the sign-in, or your launch ticket expired. Try again.');
    } else if (ev.detail.clean) {
      ui.disconnected('Disconnected', 'The session ended.');
    } else {
      ui.disconnected('Connection lost', 'The connection to the remote computer was lost. Reconnect to continue.');
    }
  });
  rfb.addEventListener('securityfailure', (ev) => {
    ui.disconnected('Sign-in failed', ev.detail.reason || 'The host refused the connection.');
  });
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
