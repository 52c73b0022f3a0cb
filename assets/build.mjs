// Copies the browser clients Portico serves from the npm packages (locked
// by package-lock.json) into vendor/, and writes brotli and gzip siblings
// so the gateway can serve them compressed without compressing at run time.
// Run: npm ci && node build.mjs
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const nm = join(here, 'node_modules');
const out = join(here, 'vendor');

// Keep the committed README; everything else is rebuilt.
for (const name of readdirSync(out, { withFileTypes: true })) {
  if (name.name !== 'README.md') rmSync(join(out, name.name), { recursive: true, force: true });
}

const copies = [
  ['@novnc/novnc/core', 'novnc/core'],
  ['@novnc/novnc/vendor', 'novnc/vendor'],
  ['@novnc/novnc/LICENSE.txt', 'novnc/LICENSE.txt'],
  ['@xterm/xterm/lib/xterm.mjs', 'xterm/xterm.mjs'],
  ['@xterm/xterm/css/xterm.css', 'xterm/xterm.css'],
  ['@xterm/xterm/LICENSE', 'xterm/LICENSE'],
  ['@xterm/addon-fit/lib/addon-fit.mjs', 'xterm/addon-fit.mjs'],
  ['ironrdp-wasm/pkg/rdp_client.js', 'ironrdp/rdp_client.js'],
  ['ironrdp-wasm/pkg/rdp_client_bg.wasm', 'ironrdp/rdp_client_bg.wasm'],
  ['ironrdp-wasm/LICENSE', 'ironrdp/LICENSE'],
];
for (const [from, to] of copies) {
  mkdirSync(dirname(join(out, to)), { recursive: true });
  cpSync(join(nm, from), join(out, to), { recursive: true });
}

const walk = (d) => readdirSync(d, { withFileTypes: true }).flatMap((e) =>
  e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]);
const compressible = /\.(m?js|css|wasm|svg|json|html|txt)$/;
const files = [];
for (const f of walk(out)) {
  const rel = f.slice(out.length + 1);
  if (rel === 'README.md') continue;
  files.push(rel);
  const data = readFileSync(f);
  if (!compressible.test(f) || data.length < 1024) continue;
  const br = brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
  const gz = gzipSync(data, { level: 9 });
  if (br.length < data.length) writeFileSync(f + '.br', br);
  if (gz.length < data.length) writeFileSync(f + '.gz', gz);
}
const versions = Object.fromEntries(['@novnc/novnc', '@xterm/xterm', '@xterm/addon-fit', 'ironrdp-wasm'].map((p) =>
  [p, JSON.parse(readFileSync(join(nm, p, 'package.json'))).version]));
writeFileSync(join(out, 'manifest.json'), JSON.stringify({ versions, files: files.sort() }, null, 2) + '\n');
console.log(`vendor/: ${files.length} files from`, versions);
