// The session page's Files panel, shared by every protocol that moves files
// (SSH over SFTP today; RDP's drive can use the same): a folder listing that
// is sorted (folders first, then by name), folders that open, readable
// sizes, uploads with a progress bar that moves, and errors shown in the
// panel instead of alert boxes. It knows nothing about the protocol: the
// page hands it a backend.
//
// A backend is {
//   list(dir) → Promise<[{name, size, dir}]>   (throws Error(message for the user))
//   downloadURL(path) → string                  (only called when downloads are allowed)
//   upload(dir, file, onProgress(sent, total)) → Promise   (throws Error(message))
// }
// where dir and path are '/'-separated and relative to the starting folder
// ('' is the starting folder itself).

const units = ['bytes', 'KB', 'MB', 'GB', 'TB'];

// humanSize writes a byte count the way file managers do: 1 byte, 980 bytes,
// 1.5 KB, 12 MB (powers of 1024, one decimal below 10).
export function humanSize(n) {
  if (!Number.isFinite(n) || n < 0) return '';
  if (n === 1) return '1 byte';
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  if (i === 0) return `${n} bytes`;
  return `${n < 10 ? n.toFixed(1) : Math.round(n)} ${units[i]}`;
}

// sortEntries orders a listing the way people look for things: folders
// first, then names in the user's language, "file2" before "file10".
export function sortEntries(entries) {
  const coll = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });
  return [...entries].sort((a, b) => (a.dir === b.dir ? coll.compare(a.name, b.name) : a.dir ? -1 : 1));
}

function join(dir, name) { return dir ? `${dir}/${name}` : name; }

function el(tag, props = {}, ...children) {
  const e = Object.assign(document.createElement(tag), props);
  e.append(...children);
  return e;
}

// filesPanel drives the panel's elements (#file-path, #file-list,
// #file-progress, #file-status, #file-error, #file-up) with backend.
// allow is {upload, download}. It returns {refresh(), upload(files)}.
export function filesPanel(backend, allow) {
  const pathEl = document.getElementById('file-path');
  const list = document.getElementById('file-list');
  const bar = document.getElementById('file-progress');
  const status = document.getElementById('file-status');
  const errorEl = document.getElementById('file-error');
  let dir = '';
  let busy = false;

  function showError(msg) {
    if (!errorEl) return;
    errorEl.textContent = msg || '';
    errorEl.hidden = !msg;
  }
  function say(msg) { if (status) status.textContent = msg; }

  function crumbs() {
    if (!pathEl) return;
    const parts = dir ? dir.split('/') : [];
    const home = el('button', { type: 'button', className: 'link', textContent: 'Home folder' });
    home.addEventListener('click', () => open(''));
    pathEl.replaceChildren(home);
    parts.forEach((p, i) => {
      const to = parts.slice(0, i + 1).join('/');
      const b = el('button', { type: 'button', className: 'link', textContent: p });
      b.addEventListener('click', () => open(to));
      pathEl.append(' / ', b);
    });
  }

  async function open(to) {
    showError('');
    let entries;
    try {
      entries = await backend.list(to);
    } catch (e) {
      showError(e.message || 'Cannot list this folder.');
      return;
    }
    dir = to;
    crumbs();
    list.replaceChildren();
    if (dir) {
      const up = el('button', { type: 'button', className: 'link', textContent: '.. (up one folder)' });
      up.addEventListener('click', () => open(dir.split('/').slice(0, -1).join('/')));
      list.append(el('li', { className: 'dir' }, up));
    }
    const sorted = sortEntries(entries);
    if (sorted.length === 0) list.append(el('li', { className: 'hint', textContent: 'This folder is empty.' }));
    for (const f of sorted) {
      const li = el('li', { className: f.dir ? 'dir' : 'file' });
      if (f.dir) {
        const b = el('button', { type: 'button', className: 'link', textContent: f.name + '/' });
        b.addEventListener('click', () => open(join(dir, f.name)));
        li.append(b);
      } else {
        const name = allow.download
          ? el('a', { href: backend.downloadURL(join(dir, f.name)), download: f.name, textContent: f.name })
          : el('span', { textContent: f.name });
        li.append(name, el('span', { className: 'size', textContent: humanSize(f.size) }));
      }
      list.append(li);
    }
  }

  async function upload(files) {
    if (busy || !allow.upload) return;
    busy = true;
    showError('');
    const total = [...files].reduce((s, f) => s + f.size, 0);
    let before = 0;
    let done = 0;
    let failure = '';
    try {
      for (const f of files) {
        say(`Uploading ${f.name}…`);
        bar.hidden = false;
        bar.max = Math.max(total, 1);
        bar.value = before;
        try {
          await backend.upload(dir, f, (sent) => { bar.value = before + sent; });
        } catch (e) {
          failure = e.message || `The upload of ${f.name} failed.`;
          break;
        }
        before += f.size;
        bar.value = before;
        done++;
      }
    } finally {
      bar.hidden = true;
      busy = false;
    }
    say(done ? `Uploaded ${done} file${done === 1 ? '' : 's'} (${humanSize(before)}).` : '');
    if (done) await open(dir); // the listing shows what arrived
    showError(failure); // after the refresh, which clears old errors
  }

  return { refresh: () => open(dir), upload };
}

// httpFilesBackend is a backend over the portal's files API for a session
// (GET {url}?dir= lists, GET {url}/download?name= downloads, POST
// {url}?dir=&name= uploads with the CSRF token). Errors carry the
// gateway's own message for the user.
export function httpFilesBackend(url, csrf) {
  async function fail(r, what) {
    const body = await r.json().catch(() => ({}));
    return new Error(body.error || `${what} failed (${r.status}).`);
  }
  return {
    async list(dir) {
      let r;
      try { r = await fetch(`${url}?dir=${encodeURIComponent(dir)}`, { headers: { Accept: 'application/json' } }); } catch { throw new Error('The gateway cannot be reached: check your network.'); }
      if (!r.ok) throw await fail(r, 'Listing the folder');
      return r.json();
    },
    downloadURL(path) { return `${url}/download?name=${encodeURIComponent(path)}`; },
    upload(dir, file, onProgress) {
      // XMLHttpRequest, not fetch: only it reports upload progress.
      return new Promise((resolve, reject) => {
        const x = new XMLHttpRequest();
        x.open('POST', `${url}?dir=${encodeURIComponent(dir)}&name=${encodeURIComponent(file.name)}`);
        x.setRequestHeader('X-CSRF-Token', csrf);
        x.setRequestHeader('Content-Type', 'application/octet-stream');
        x.responseType = 'json';
        x.upload.onprogress = (ev) => onProgress(ev.loaded, ev.total);
        x.onload = () => (x.status === 200 ? resolve(x.response) : reject(new Error(x.response?.error || `The upload of ${file.name} failed (${x.status}).`)));
        x.onerror = () => reject(new Error(`The upload of ${file.name} was cut off: check your network and try again.`));
        x.send(file);
      });
    },
  };
}
