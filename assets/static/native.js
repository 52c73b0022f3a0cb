// Native client (portico-client): detection right after sign-in or on the
// user's say-so, the per-user launch-method choice, and what a launch does
// when the gateway decides for the native client — open the portico://
// URL, offer the download, or say it cannot be used and offer the browser.
// The gateway decides (decideLaunch); this page only carries it out.
const panel = document.getElementById('native');
const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let ctx = null;      // { base, csrf, relaunch(id, newTab, inBrowser) }
let detecting = null; // the running detection's promise

function status(msg) {
  const s = $('detect-status');
  if (s) s.textContent = msg;
}

// openURL hands a portico:// URL to the OS's URL handler. A navigation, not
// a frame: the portal's CSP allows frames from itself only. The URL stays on
// the panel (data-last-url) so it can be opened again by hand.
function openURL(url) {
  panel.dataset.lastUrl = url;
  const a = document.createElement('a');
  a.href = url;
  a.rel = 'noopener';
  a.click();
}

async function api(method, path, body) {
  const res = await fetch(`${ctx.base}${path}`, {
    method, credentials: 'same-origin',
    headers: { 'X-CSRF-Token': ctx.csrf, 'Accept': 'application/json', ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const out = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(out.error || `request failed (${res.status})`);
  return out;
}

// detect runs one detection: the gateway issues a nonce, the page opens
// portico://detect?..., the client reports by HTTP and DNS, and the page
// polls until the gateway says detected or the timeout passed.
function detect() {
  if (detecting) return detecting;
  $('detect-ask').hidden = true;
  detecting = (async () => {
    try {
      const start = await api('POST', '/api/detect');
      panel.dataset.detectUrl = start.url;
      status('Looking for the Portico client on this computer…');
      openURL(start.url);
      // The gateway ends the detection at its timeout; this limit only
      // guards against a gateway that stopped answering.
      const guard = Date.now() + (start.timeoutSeconds + 30) * 1000;
      while (Date.now() < guard) {
        await sleep(500);
        const st = await api('GET', `/api/detect/${encodeURIComponent(start.nonce)}`);
        if (st.state === 'pending') continue;
        panel.dataset.state = st.state;
        status(st.state === 'detected'
          ? 'The Portico client is installed: desktops and applications open in it.'
          : 'The Portico client was not detected on this computer.');
        if (st.state !== 'detected') notDetected();
        return st.state;
      }
      status('The gateway did not finish the detection. Reload the page to try again.');
    } catch (e) {
      status(`Detection failed: ${e.message}`);
    } finally {
      detecting = null;
    }
    return '';
  })();
  return detecting;
}

// showDownload offers the client's download and install steps, this
// computer's OS first; with a launch URL also a link to open it by hand.
function showDownload(url) {
  if (url) {
    $('native-open').href = url;
    panel.dataset.lastUrl = url;
  }
  $('native-open').hidden = !url;
  const steps = $('install-steps');
  const mine = /Windows/.test(navigator.userAgent) ? 'Windows' : /Linux|X11/.test(navigator.userAgent) ? 'Linux' : '';
  const first = steps && [...steps.children].find((li) => li.dataset.os === mine);
  if (first) steps.prepend(first);
  $('native-download').hidden = false;
}

// notDetected: with "native" as the only launch method nothing can open
// until the client is installed, so the download is offered at once, not
// after a first failed click.
function notDetected() {
  if (panel.dataset.method === 'native') showDownload('');
}

function showFallback(msg, id, newTab) {
  $('fallback-msg').textContent = `${msg} You can open it in this browser instead.`;
  $('fallback').hidden = false;
  $('open-browser').onclick = () => {
    $('fallback').hidden = true;
    ctx.relaunch(id, newTab, true);
  };
}

// watch waits for the native client to pick the launch up; with
// native-with-fallback an unused ticket means it could not be used.
async function watch(token, id, newTab) {
  const guard = Date.now() + (Number(panel.dataset.timeout) + 30) * 1000;
  while (Date.now() < guard) {
    await sleep(1000);
    let st;
    try { st = await api('GET', `/api/launch/native/${token}`); } catch { return; }
    if (st.state === 'opened') { status('Opened in the Portico client.'); return; }
    if (st.state === 'not-opened') {
      showFallback('The Portico client did not open the session.', id, newTab);
      return;
    }
  }
}

// nativeLaunch carries out a launch reply whose action is not "browser".
export async function nativeLaunch(id, newTab, reply) {
  $('fallback').hidden = true;
  $('native-download').hidden = true;
  switch (reply.action) {
    case 'native':
      status('Opening in the Portico client…');
      openURL(reply.nativeURL);
      if (panel.dataset.method === 'native-with-fallback') watch(reply.watch, id, newTab);
      return;
    case 'ask-detect': {
      if (panel.dataset.detection === 'on-prompt' && !detecting) {
        $('detect-ask').hidden = false;
        $('detect-go').onclick = async () => { if (await detect()) ctx.relaunch(id, newTab, false); };
        return;
      }
      if (await detect()) ctx.relaunch(id, newTab, false);
      return;
    }
    case 'show-download':
      showDownload(reply.nativeURL);
      return;
    case 'fallback-offer':
      showFallback('The Portico client was not detected on this computer.', id, newTab);
      return;
  }
}

// initNative starts detection as the settings say and wires the panel.
export function initNative(c) {
  if (!panel) return;
  ctx = c;
  const ds = panel.dataset;
  $('detect-go').onclick = () => detect();
  $('detect-skip').onclick = () => { $('detect-ask').hidden = true; };
  $('detect-again').onclick = () => { $('native-download').hidden = true; detect(); };
  for (const r of document.querySelectorAll('#method-choice input[name="method"]')) {
    r.addEventListener('change', async () => {
      try { await api('POST', '/api/launch-method', { method: r.value }); ds.choice = r.value; } catch (e) { status(e.message); }
    });
  }
  if (ds.state === 'detected') status('The Portico client is installed: desktops and applications open in it.');
  if (ds.state === 'not-detected') notDetected();
  if (ds.state !== '' || ds.choice === 'browser') return;
  if (ds.detection === 'automatic') detect();
  else $('detect-ask').hidden = false;
}
