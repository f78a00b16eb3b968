#!/bin/sh
':' //; [ -z "${NODE_EXTRA_CA_CERTS-}" ] || { export TSBUILD_DEFERRED_NODE_EXTRA_CA_CERTS="$NODE_EXTRA_CA_CERTS"; unset NODE_EXTRA_CA_CERTS; }; exec node "$0" "$@"
// The line above is shell, and a string and a comment to JavaScript: run as a program, this file
// starts Node on itself without NODE_EXTRA_CA_CERTS, which Node 20 loads before any JavaScript runs
// (40 ms of every start with Debian's CA bundle); the CLI applies it at the first TLS connection
// (src/extra-ca.ts). `node bin/tsbuild.cjs` skips that line and keeps the variable as it is.
// The `tsbuild` command. Loads the bundled CLI (../dist/tsbuild.cjs, made by
// scripts/bundle-cli.mjs after `tsc -b`) with a V8 code cache beside it, one per command
// (../dist/tsbuild.cjs.<command>.cache, written by that command's first run, rewritten when V8
// rejects it), so a cold start compiles little. A cache holds the functions its run compiled: one
// cache for all commands held whatever the first run happened to be (an import, in the benchmark),
// and every later build compiled its own code again (~20 ms of a 0.22 s no-change rebuild). An
// eager cache of the whole bundle (--no-lazy) is 1.25 MB and slower to load than that compiling.
// When the bundle is missing or older than a package's last compile, runs the unbundled
// ../dist/src/main.js instead: slower to start, never stale.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const dist = path.join(__dirname, '..', 'dist');
const bundle = path.join(dist, 'tsbuild.cjs');
const packages = path.join(__dirname, '..', '..');

function mtimeMs(file) {
  try {
    return fs.statSync(file).mtimeMs;
  } catch {
    return undefined;
  }
}

function bundleIsFresh() {
  const built = mtimeMs(bundle);
  if (built === undefined) return false;
  for (const p of ['parser', 'sys', 'layer-store', 'executor', 'cli']) {
    const compiled = mtimeMs(path.join(packages, p, 'dist', '.tsbuildinfo'));
    if (compiled !== undefined && compiled > built) return false;
  }
  return true;
}

/** Commands with a cache of their own; anything else shares `other`. */
const CACHED_COMMANDS = new Set(['build', 'save', 'load', 'images', 'inspect', 'history', 'tag', 'rmi', 'prune', 'import', 'export', 'push', 'pull', 'login', 'logout', 'system']);

/** The command argv names, as main.ts finds it (after --root DIR); `tsbuild -t x .` is a build. */
function commandOf(argv) {
  let i = 0;
  while (argv[i] === '--root' || (argv[i] !== undefined && argv[i].startsWith('--root='))) i += argv[i] === '--root' ? 2 : 1;
  const first = argv[i];
  if (first !== undefined && CACHED_COMMANDS.has(first)) return first;
  return first === undefined || /^(-h|--help|help|-v|--version|version)$/.test(first) ? 'other' : first.startsWith('-') || first.includes('/') || first === '.' ? 'build' : 'other';
}

function runBundle() {
  const vm = require('node:vm');
  const Module = require('node:module');
  const cacheFile = `${bundle}.${commandOf(process.argv.slice(2))}.cache`;
  // ASCII (bundle-cli checks): latin1 decodes it exactly, and faster than utf8
  const source = fs.readFileSync(bundle, 'latin1');
  let cachedData;
  try {
    cachedData = fs.readFileSync(cacheFile);
  } catch {
    cachedData = undefined;
  }
  const script = new vm.Script(Module.wrap(source), {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
    importModuleDynamically: vm.constants.USE_MAIN_CONTEXT_DEFAULT_LOADER,
  });
  if (cachedData === undefined || script.cachedDataRejected) {
    // after the command, so the cache holds the functions it compiled; best effort (read-only installs)
    process.once('exit', () => {
      const tmp = `${cacheFile}.${process.pid}`;
      try {
        fs.writeFileSync(tmp, script.createCachedData());
        fs.renameSync(tmp, cacheFile);
      } catch {
        try {
          fs.unlinkSync(tmp);
        } catch {
          // nothing was written
        }
      }
    });
  }
  const mod = { exports: {} };
  script.runInThisContext()(mod.exports, Module.createRequire(bundle), mod, bundle, dist);
}

if (bundleIsFresh()) runBundle();
else import('../dist/src/main.js').then((m) => m.runCli());
