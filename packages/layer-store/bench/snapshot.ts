/**
 * Snapshot preparation and export of an image in a store, against GNU tar on the same blobs.
 *
 *   node packages/layer-store/dist/bench/snapshot.js ROOT REF [ROUNDS] [--whiteouts N]
 *
 * Per round: `prepareSnapshots` of every layer of REF (its snapshot dirs are moved aside first,
 * and put back at the end), `tar -xzf` of each layer blob into a fresh temp dir, and
 * `exportImage` to /dev/null. With `--whiteouts N`, also times applying (overlay format) a
 * synthetic layer of N whiteouts onto a fresh dir (what `RUN rm -rf` of N entries gives).
 * Prints wall ms and node CPU ms; numbers depend on load (printed).
 */
import { spawnSync } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { applyLayer, chainIDsOf, exportImage, Store } from '../src/index.js';
import { encodeHeader, padding, trailer } from '../src/tar.js';

const args = process.argv.slice(2);
const wIdx = args.indexOf('--whiteouts');
const whiteouts = wIdx >= 0 ? Number(args.splice(wIdx, 2)[1]) : 0;
const [root, ref, roundsArg] = args;
if (!root || !ref) throw new Error('usage: snapshot.js ROOT REF [ROUNDS] [--whiteouts N]');
const rounds = Number(roundsArg ?? 3);

function sh(cmd: string): void {
  const r = spawnSync('sh', ['-c', cmd], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error(`${cmd} failed`);
}

async function time(label: string, fn: () => Promise<void> | void): Promise<void> {
  sh('sync');
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await fn();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  console.log(`${label.padEnd(34)} ${ms.toFixed(0).padStart(7)} ms wall  ${((cpu.user + cpu.system) / 1000).toFixed(0).padStart(7)} ms node CPU`);
}

/** A layer tar: N files in dirs of 100, then (as a second layer) a whiteout for each. */
function whiteoutLayers(n: number): { files: Buffer; whiteouts: Buffer } {
  const files: Buffer[] = [];
  const wh: Buffer[] = [];
  const h = { type: 'file' as const, mode: 0o644, uid: 0, gid: 0, size: 0, mtime: 1e9 };
  for (let i = 0; i < n; i++) {
    const dir = `d${Math.floor(i / 100)}`;
    if (i % 100 === 0) files.push(encodeHeader({ ...h, name: dir, type: 'directory', mode: 0o755 }));
    files.push(encodeHeader({ ...h, name: `${dir}/f${i}`, size: 1 }), Buffer.from('x'), padding(1));
    wh.push(encodeHeader({ ...h, name: `${dir}/.wh.f${i}` }));
  }
  return { files: Buffer.concat([...files, trailer()]), whiteouts: Buffer.concat([...wh, trailer()]) };
}

const store = await Store.open(root);
const image = await store.resolveImage(ref);
const layers = image.manifest.layers.map((l, i) => ({ digest: l.digest, diffID: image.config.rootfs.diff_ids[i]! }));
const dirs = chainIDsOf(layers.map((l) => l.diffID)).map((c) => store.snapshotDirFor(c));
const work = await mkdtemp(join(tmpdir(), 'tsb-snapbench-'));
console.log(`load average ${loadavg().map((x) => x.toFixed(2)).join(' ')}; ${ref}: ${layers.length} layer(s)`);
const aside: string[] = [];
for (const [i, d] of dirs.entries()) {
  if (existsSync(d)) {
    const a = join(work, `kept-${i}`);
    renameSync(d, a);
    aside.push(a);
  } else aside.push('');
}
try {
  for (let r = 0; r < rounds; r++) {
    await time('prepareSnapshots', async () => {
      await store.prepareSnapshots(layers);
    });
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
    const x = join(work, `tar-${r}`);
    mkdirSync(x);
    await time('tar -xzf (each blob)', () => {
      for (const l of layers) sh(`tar -C ${x} -xzf ${store.blobPath(l.digest)}`);
    });
    rmSync(x, { recursive: true, force: true });
    await time('exportImage → /dev/null', async () => {
      await exportImage(store, ref, createWriteStream('/dev/null'));
    });
    if (whiteouts > 0) {
      const { files, whiteouts: wh } = whiteoutLayers(whiteouts);
      const t = join(work, `wh-${r}`);
      mkdirSync(t);
      await applyLayer(Readable.from([files]), t, { format: 'overlay' });
      await time(`applyLayer overlay ${whiteouts} whiteouts`, async () => {
        await applyLayer(Readable.from([wh]), t, { format: 'overlay' });
      });
      rmSync(t, { recursive: true, force: true });
    }
  }
} finally {
  for (const [i, d] of dirs.entries()) {
    rmSync(d, { recursive: true, force: true });
    if (aside[i]) renameSync(aside[i]!, d);
  }
  rmSync(work, { recursive: true, force: true });
}
