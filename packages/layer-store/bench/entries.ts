/**
 * Per-entry cost of the tar paths on many small files, against GNU tar on the same data.
 * `node packages/layer-store/dist/bench/entries.js [DIR [ROUNDS]]` makes (once) a tree of 100 dirs × 200
 * files of 2–12 KB under DIR (default /var/tmp/tsb-entries-bench/tree), then times:
 * layerTarStream → discard (no gzip), writeLayer (none and gzip), applyLayer of that tar
 * (plain and overlay), and `tar -cf - . | cat`, `tar -xf` on the same tree/tar.
 * Prints wall ms, CPU ms and µs per entry. Numbers depend on load: note `uptime`.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { applyLayer, layerTarStream, Store, writeLayer } from '../src/index.js';

const base = process.argv[2] ?? '/var/tmp/tsb-entries-bench';
const tree = join(base, 'tree');
const DIRS = 100;
const FILES = 200;

function makeTree(): void {
  if (existsSync(join(tree, '.done'))) return;
  let seed = 12345;
  const rnd = (): number => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff), seed);
  const pool = Buffer.alloc(64 * 1024);
  for (let i = 0; i < pool.length; i++) pool[i] = rnd() & 0xff;
  for (let d = 0; d < DIRS; d++) {
    const dir = join(tree, `d${String(d).padStart(3, '0')}`);
    mkdirSync(dir, { recursive: true });
    for (let f = 0; f < FILES; f++) {
      const size = 2048 + (rnd() % 10240);
      const off = rnd() % (pool.length - size);
      writeFileSync(join(dir, `f${String(f).padStart(3, '0')}.dat`), pool.subarray(off, off + size));
    }
  }
  writeFileSync(join(tree, '.done'), '');
}

const entries = DIRS * FILES + DIRS + 1;

async function time(label: string, fn: () => Promise<void> | void, before?: () => Promise<void> | void): Promise<void> {
  if (before) await before();
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  const cpuMs = (cpu.user + cpu.system) / 1000;
  console.log(`${label.padEnd(34)} ${ms.toFixed(0).padStart(7)} ms wall  ${cpuMs.toFixed(0).padStart(7)} ms node CPU  ${((ms * 1000) / entries).toFixed(0).padStart(6)} µs/entry`);
}

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
}

makeTree();
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${entries} entries; du ${execFileSync('du', ['-sh', tree]).toString().split('\t')[0]}`);
const tarFile = join(base, 'tree.tar');
const out = join(base, 'out');
await mkdir(out, { recursive: true });
const store = await Store.open(join(base, 'store'));
// Each extraction gets a new directory, all removed at the end: removing 20k files just before a
// run would bill the kernel's deferred work (journal, discard) to the next extraction.
let target = '';
let serial = 0;
const fresh = async (): Promise<void> => {
  target = join(out, `x${serial++}`);
  await mkdir(target, { mode: 0o755 });
  sh('sync');
};
const rounds = Number(process.argv[3] ?? 1);
for (let round = 0; round < rounds; round++) {
  sh('sync');
  await time('GNU tar -cf - . | cat', () => sh(`tar -C ${tree} -cf - . | cat > /dev/null`));
  await time('layerTarStream → discard', async () => {
    await pipeline(layerTarStream(tree, { kind: 'rootfs' }), new Writable({ write: (_c, _e, cb) => cb() }));
  });
  await time('layerTarStream → file', async () => {
    await pipeline(layerTarStream(tree, { kind: 'rootfs' }), createWriteStream(tarFile));
  });
  await time('writeLayer none', async () => {
    await writeLayer(store, tree, { kind: 'rootfs', compression: 'none' });
  });
  await time('writeLayer gzip', async () => {
    await writeLayer(store, tree, { kind: 'rootfs' });
  });
  await time('GNU tar -xf', () => sh(`tar -C ${target} -xf ${tarFile}`), fresh);
  await time('applyLayer plain', async () => {
    await applyLayer(createReadStream(tarFile), target, { format: 'plain' });
  }, fresh);
  await time('applyLayer overlay', async () => {
    await applyLayer(createReadStream(tarFile), target, { format: 'overlay' });
  }, fresh);
}
await rm(out, { recursive: true, force: true });
await rm(join(base, 'store'), { recursive: true, force: true });
