#!/usr/bin/env node
// The `tsbuild` command. Loads the bundled CLI (../dist/tsbuild.cjs, made by
// scripts/bundle-cli.mjs after `tsc -b`) with a V8 code cache beside it (../dist/tsbuild.cjs.cache,
// written by the first run, rewritten when V8 rejects it), so a cold start compiles little.
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
  for (const p of ['parser', 'layer-store', 'executor', 'cli']) {
    const compiled = mtimeMs(path.join(packages, p, 'dist', '.tsbuildinfo'));
    if (compiled !== undefined && compiled > built) return false;
  }
  return true;
}

function runBundle() {
  const vm = require('node:vm');
  const Module = require('node:module');
  const cacheFile = `${bundle}.cache`;
  const source = fs.readFileSync(bundle, 'utf8');
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
