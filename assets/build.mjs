// Copies the browser files Portico serves out of the npm packages (pinned
// by package.json and package-lock.json) into vendor/, and writes brotli
// and gzip siblings so the gateway never compresses at run time.
//
//   cd assets && npm ci && node build.mjs
//
// Only Node's standard library is used. The output is deterministic (same
// packages → same bytes), so the Go side's tree hash, and with it every
// asset URL, only changes when a file really does.
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, posix } from 'node:path';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nm = join(here, 'node_modules');
const out = join(here, 'vendor');

const rdpPkg = '@devolutions/iron-remote-desktop-rdp';
const packages = ['@novnc/novnc', '@xterm/xterm', '@xterm/addon-fit', rdpPkg];
for (const p of packages) {
  if (!existsSync(join(nm, p, 'package.json'))) {
    console.error(`build.mjs: ${p} is not installed: run "npm ci" in assets/ first`);
    process.exit(1);
  }
}

// ES modules are followed through their relative imports, so exactly the
// files a browser will request are copied (noVNC's core pulls in its
// bundled pako this way). A bare specifier would not resolve in the
// browser without an import map, so it stops the build. The regex is a
// heuristic, not a parser; a file it missed would make the Go browser test
// (which imports core/rfb.js from the embedded tree) fail.
const importRe = /(?:^|[;}\s])(?:import|export)\s*(?:[\w*{}\s,$]*?\s*from\s*)?["']([^"']+)["']|\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;
function moduleGraph(pkgDir, entry) {
  const seen = new Set();
  const todo = [entry];
  while (todo.length > 0) {
    const rel = todo.pop();
    if (seen.has(rel)) continue;
    seen.add(rel);
    const src = readFileSync(join(pkgDir, rel), 'utf8');
    for (const m of src.matchAll(importRe)) {
      const spec = m[1] ?? m[2];
      if (!spec.startsWith('./') && !spec.startsWith('../')) {
        throw new Error(`${rel} imports ${JSON.stringify(spec)}, which a browser cannot resolve`);
      }
      const target = posix.normalize(posix.join(posix.dirname(rel), spec));
      if (target.startsWith('../')) throw new Error(`${rel} imports outside its package: ${spec}`);
      todo.push(target);
    }
  }
  return [...seen].sort();
}

// [package, file in package, path under vendor/]. noVNC keeps its layout
// because its modules import each other by relative path; the others are
// single self-contained files, which is checked so that an upstream split
// into several modules fails here rather than in the browser.
const copies = [
  ...moduleGraph(join(nm, '@novnc/novnc'), 'core/rfb.js').map((f) => ['@novnc/novnc', f, `novnc/${f}`]),
  ['@novnc/novnc', 'LICENSE.txt', 'novnc/LICENSE.txt'],
  ['@novnc/novnc', 'vendor/pako/LICENSE', 'novnc/vendor/pako/LICENSE'],
  ['@xterm/xterm', 'lib/xterm.mjs', 'xterm/xterm.mjs'],
  ['@xterm/xterm', 'css/xterm.css', 'xterm/xterm.css'],
  ['@xterm/xterm', 'LICENSE', 'xterm/LICENSE'],
  ['@xterm/addon-fit', 'lib/addon-fit.mjs', 'xterm/addon-fit.mjs'],
  // The package ships no licence file; its package.json names the licence
  // (MIT OR Apache-2.0) and the project.
  [rdpPkg, 'package.json', 'ironrdp/package.json'],
];
for (const [pkg, file] of copies) {
  if (pkg !== '@novnc/novnc' && /\.m?js$/.test(file) && moduleGraph(join(nm, pkg), file).length !== 1) {
    throw new Error(`${pkg}/${file} imports other modules: copy them too`);
  }
}

// IronRDP's official web backend inlines its wasm as one base64 data: URL
// (6 MB of JavaScript). Served that way it would be 1.58 MB brotli instead
// of 1.14 MB, parsed as a string before compiling, and compiled only after
// the whole module arrived. So the wasm is written out as a file of its own
// (served as application/wasm, compiled while it streams) and the one
// constant holding the data: URL becomes a URL next to the module, which
// the package's own init() already accepts (it fetches a URL object). The
// pattern must match exactly once; an upstream change fails the build here.
const rdpJS = 'iron-remote-desktop-rdp.js';
const wasmName = 'iron-remote-desktop-rdp.wasm';
function splitWasm(src) {
  const re = /const (\w+) = "data:application\/wasm;base64,([A-Za-z0-9+/=]+)";/g;
  const found = [...src.matchAll(re)];
  if (found.length !== 1) throw new Error(`${rdpPkg}/${rdpJS}: expected one inlined wasm, found ${found.length}`);
  const [whole, name, b64] = found[0];
  const wasm = Buffer.from(b64, 'base64');
  if (wasm.subarray(0, 4).toString('latin1') !== '\0asm') throw new Error(`${rdpPkg}/${rdpJS}: the inlined data is not wasm`);
  const uses = src.split(new RegExp(`\\b${name}\\b`)).length - 1;
  if (uses !== 2) throw new Error(`${rdpPkg}/${rdpJS}: the wasm constant ${name} is used ${uses - 1} times, expected once (by init)`);
  const js = src.replace(whole, `const ${name} = new URL(${JSON.stringify('./' + wasmName)}, import.meta.url);`);
  if ([...js.matchAll(importRe)].length !== 0) throw new Error(`${rdpPkg}/${rdpJS} imports other modules: copy them too`);
  return { js, wasm };
}

// Keep the committed README; everything else is rebuilt from scratch so a
// file dropped upstream does not linger.
mkdirSync(out, { recursive: true });
for (const e of readdirSync(out)) {
  if (e !== 'README.md') rmSync(join(out, e), { recursive: true, force: true });
}

const compressible = /\.(m?js|css|wasm|svg|json|txt)$/;
const files = [];
const rdp = splitWasm(readFileSync(join(nm, rdpPkg, rdpJS), 'utf8'));
const written = [
  ...copies.map(([pkg, file, to]) => [to, () => copyFileSync(join(nm, pkg, file), join(out, to))]),
  [`ironrdp/${rdpJS}`, () => writeFileSync(join(out, 'ironrdp', rdpJS), rdp.js)],
  [`ironrdp/${wasmName}`, () => writeFileSync(join(out, 'ironrdp', wasmName), rdp.wasm)],
];
for (const [to, write] of written) {
  const dst = join(out, to);
  mkdirSync(dirname(dst), { recursive: true });
  write();
  files.push(to);
  const data = readFileSync(dst);
  if (!compressible.test(to)) continue;
  const br = brotliCompressSync(data, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: 11,
      // The largest window the brotli format allows (16 MB; zlib's default
      // is 4 MB). The wasm is 4.5 MB, so with the default its tail could
      // not refer back to its start; every browser decodes this window.
      [constants.BROTLI_PARAM_LGWIN]: constants.BROTLI_MAX_WINDOW_BITS,
      [constants.BROTLI_PARAM_SIZE_HINT]: data.length,
    },
  });
  const gz = gzipSync(data, { level: 9 });
  // A sibling only pays off when it is smaller (tiny files often are not).
  if (br.length < data.length) writeFileSync(dst + '.br', br);
  if (gz.length < data.length) writeFileSync(dst + '.gz', gz);
}

// The manifest is what the Go side checks to tell a built vendor/ from a
// fresh clone (only README.md) or a half-finished build.
const versions = Object.fromEntries(packages.map((p) => [p, JSON.parse(readFileSync(join(nm, p, 'package.json'), 'utf8')).version]));
writeFileSync(join(out, 'manifest.json'), JSON.stringify({ versions, files: files.sort() }, null, 2) + '\n');
console.log(`vendor/: ${files.length} files from`, versions);
