/**
 * Layer-write throughput: `node dist/bench/layer-write.js DIR [level...]` writes DIR as a layer at
 * each gzip level into a temp store and prints MB/s (uncompressed tar bytes per second, wall and
 * per CPU second: zlib runs in libuv's pool, so process CPU time includes it) and ratio.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGunzip } from 'node:zlib';
import { Store, writeLayer } from '../src/index.js';

async function tarSize(store: Store, digest: Parameters<Store['openBlob']>[0]): Promise<number> {
  let n = 0;
  for await (const c of store.openBlob(digest).pipe(createGunzip())) n += (c as Buffer).length;
  return n;
}

const [dir, ...levels] = process.argv.slice(2);
if (!dir) throw new Error('usage: layer-write DIR [level...]');
const root = await mkdtemp(join(tmpdir(), 'bench-store-'));
try {
  const store = await Store.open(root);
  for (const level of (levels.length ? levels : ['1', '6']).map(Number)) {
    const start = process.hrtime.bigint();
    const cpu0 = process.cpuUsage();
    const layer = await writeLayer(store, dir, { kind: 'rootfs', gzipLevel: level });
    const secs = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu = process.cpuUsage(cpu0);
    const cpuSecs = (cpu.user + cpu.system) / 1e6;
    const raw = await tarSize(store, layer.digest);
    console.log(
      `level ${level}: ${(raw / 1e6).toFixed(0)} MB tar → ${(layer.size / 1e6).toFixed(1)} MB gzip (${((100 * layer.size) / raw).toFixed(1)}%) in ${secs.toFixed(2)} s wall = ${(raw / 1e6 / secs).toFixed(1)} MB/s; CPU ${cpuSecs.toFixed(2)} s = ${(raw / 1e6 / cpuSecs).toFixed(1)} MB/CPU-s`,
    );
  }
} finally {
  await rm(root, { recursive: true, force: true });
}
