#!/usr/bin/env node
// Bundles the compiled CLI (packages/cli/dist/src/bin.js and everything it imports, the workspace
// packages and npm dependencies) into one CommonJS file, packages/cli/dist/tsbuild.cjs, which
// packages/cli/bin/tsbuild.cjs loads with a V8 code cache. One file instead of ~100 modules saves
// the module resolution, file reads and per-module compilation of a cold start (issue 6).
// Run after `tsc -b` (`npm run build` and `npm test` do). usage: node scripts/bundle-cli.mjs
import { build } from 'esbuild';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = dirname(dirname(fileURLToPath(import.meta.url)));
const cli = join(repo, 'packages/cli');
const outfile = join(cli, 'dist/tsbuild.cjs');

/**
 * fs-xattr is an ES module that loads its native addon at import through import.meta.url. In the
 * bundle the addon is found from the installed package, and loaded on the first xattr call only
 * (a no-change rebuild makes none; resolving and dlopen-ing it cost ~10-20 ms of every start).
 */
const ADDON_LINE = "const addon = createRequire(import.meta.url)('./build/Release/xattr')";
const LAZY_ADDON =
  "let loadedAddon; const addon = new Proxy({}, { get: (_, name) => (loadedAddon ??= createRequire(require.resolve('fs-xattr'))('./build/Release/xattr'))[name] })";
const fsXattr = {
  name: 'fs-xattr-addon',
  setup(b) {
    b.onLoad({ filter: /[\\/]fs-xattr[\\/]index\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(ADDON_LINE)) throw new Error(`${args.path}: fs-xattr changed how it loads its addon; update scripts/bundle-cli.mjs`);
      return { contents: text.replace(ADDON_LINE, LAZY_ADDON), loader: 'js' };
    });
  },
};

// the code caches of the bundle being replaced (bin/tsbuild.cjs keeps one per command)
for (const name of await readdir(dirname(outfile))) {
  if (/^tsbuild\.cjs\.(?:[a-z]+\.)?cache$/.test(name)) await rm(join(dirname(outfile), name), { force: true });
}
await build({
  entryPoints: [join(cli, 'dist/src/bin.js')],
  outfile,
  bundle: true,
  platform: 'node',
  format: 'cjs',
  target: 'node20',
  // identifiers stay, so stack traces still name functions
  minifyWhitespace: true,
  minifySyntax: true,
  legalComments: 'none',
  // main.js's own entry check reads import.meta.url (in the bundle bin.js is the entry);
  // require.resolve('fs-xattr') is meant to run, from the installed package
  logOverride: { 'empty-import-meta': 'silent', 'require-resolve-not-external': 'silent' },
  plugins: [fsXattr],
  logLevel: 'warning',
});

/**
 * Built-in modules that most commands never use, required on first use instead of at start:
 * esbuild hoists every `require("node:…")` of the bundled modules to the start, and these cost
 * ~15 ms of each start together (child_process brings net and dgram). A save, an inspect or a
 * no-change rebuild runs no process (flock and mount are @tsbuild/sys calls) and inflates nothing.
 * The bundle only reads properties of these modules (`(0, import_node_zlib.createGunzip)(…)`), so
 * a proxy that requires the module on its first property read is the module to the code.
 */
const LAZY_BUILTINS = ['node:child_process', 'node:zlib', 'node:net', 'node:perf_hooks'];
let code = await readFile(outfile, 'utf8');
for (const name of LAZY_BUILTINS) {
  if (code.includes(`__toESM(require("${name}")`)) throw new Error(`${name} has a default import in the bundle: it cannot be loaded lazily; import its named exports`);
  code = code.replaceAll(`require("${name}")`, `__lazyBuiltin("${name}")`);
}
const LAZY_HELPER =
  'function __lazyBuiltin(name){let m;const get=()=>m??=require(name);return new Proxy({},{get:(_,k)=>get()[k],has:(_,k)=>k in get(),ownKeys:()=>Reflect.ownKeys(get()),getOwnPropertyDescriptor:(_,k)=>{const d=Reflect.getOwnPropertyDescriptor(get(),k);return d&&{...d,configurable:true}}})}\n';
// after the 'use strict' prologue, if any
code = code.startsWith('"use strict";') ? `"use strict";${LAZY_HELPER}${code.slice('"use strict";'.length)}` : LAZY_HELPER + code;
// bin/tsbuild.cjs reads the bundle as latin1, which is exact for ASCII and faster than UTF-8
// decoding (5.6-7.4 ms against 12.9-17.2 ms for this 534 KB file); esbuild writes non-ASCII
// characters as escapes except inside regular expression literals: write those as \u escapes
const nonAscii = /[^\x00-\x7f]/.exec(code);
if (nonAscii !== null) {
  throw new Error(`the CLI bundle must be ASCII: ${JSON.stringify(code.slice(Math.max(0, nonAscii.index - 60), nonAscii.index + 20))} (write the character as a \\u escape in its source)`);
}
await writeFile(outfile, code);
