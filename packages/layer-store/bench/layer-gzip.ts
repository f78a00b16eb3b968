/**
 * Layer compression, same data, one run: writeLayer with the parallel gzip (default), writeLayer
 * with one zlib stream, and `tar -cf - . | gzip -6`, on up to three trees:
 *   big:   ~1 GB, half random (incompressible) files, half real files copied from /usr (compressible);
 *   small: 20,000 small files (100 B – 8 KiB) in 200 directories;
 *   mixed: 400 MiB from /dev/urandom (40 files) + 400 MiB of generated text (100 files), as a RUN
 *          that writes random data next to text would leave.
 *
 *   node packages/layer-store/dist/bench/layer-gzip.js [DATA_DIR] [--runs N] [--level L] [--trees big,small,mixed] [--no-zlib]
 *
 * DATA_DIR (default /var/tmp/tsb-gzip-bench) keeps the generated trees between runs (made once; a
 * `.complete` marker says a tree is whole); each measurement writes its output under DATA_DIR/out
 * and removes that output afterwards. Each measurement runs in its own process under
 * /usr/bin/time, so peak RSS is that process's (for the shell pipeline: its largest process).
 * MB/s is uncompressed tar bytes (our tar's size) per wall second; ratio = tar|gzip time ÷ time.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { Store, writeLayer, layerTarStream } from '../src/index.js';
import { defaultBlockEngine } from '../src/deflate-engine.js';

const MB = 1e6;
const MIB = 1024 * 1024;

/** xorshift32: reproducible pseudo-random numbers for the generated trees. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

/** True when the tree was fully generated before; throws rather than touch a foreign or half-made tree. */
async function isComplete(dir: string): Promise<boolean> {
  if (await exists(join(dir, '.complete'))) return true;
  if (await exists(dir)) throw new Error(`${dir} exists but has no .complete marker: remove it yourself or pick another DATA_DIR`);
  return false;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Regular files under `root`, byte order, depth first. */
async function* filesUnder(root: string, rel = ''): AsyncGenerator<string> {
  const names = (await readdir(join(root, rel), { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
  for (const e of names) {
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) yield* filesUnder(root, r);
    else if (e.isFile()) yield r;
  }
}

async function makeBig(dir: string): Promise<void> {
  if (await isComplete(dir)) return;
  console.error(`generating ${dir} (~1 GB) …`);
  const rand = join(dir, 'random');
  await mkdir(rand, { recursive: true });
  for (let i = 0; i < 50; i++) {
    await pipeline(createReadStream('/dev/urandom', { start: 0, end: 10 * MIB - 1 }), createWriteStream(join(rand, `blob-${String(i).padStart(2, '0')}.bin`)));
  }
  let copied = 0;
  const budget = 500 * MIB;
  for (const src of ['/usr/lib', '/usr/share']) {
    for await (const rel of filesUnder(src)) {
      if (copied >= budget) break;
      const size = (await stat(join(src, rel))).size;
      if (size > 64 * MIB) continue;
      const to = join(dir, 'usr', src.slice('/usr/'.length), rel);
      await mkdir(join(to, '..'), { recursive: true });
      await copyFile(join(src, rel), to);
      copied += size;
    }
  }
  await writeFile(join(dir, '.complete'), '');
}

async function makeSmall(dir: string): Promise<void> {
  if (await isComplete(dir)) return;
  console.error(`generating ${dir} (20,000 files) …`);
  const next = prng(20_000);
  const words = Array.from({ length: 2000 }, () => (next() % 1e9).toString(36));
  for (let d = 0; d < 200; d++) {
    const sub = join(dir, `d${String(d).padStart(3, '0')}`);
    await mkdir(sub, { recursive: true });
    for (let f = 0; f < 100; f++) {
      const size = 100 + (next() % 8092);
      let text = '';
      while (text.length < size) text += words[next() % words.length]! + (next() % 9 === 0 ? '\n' : ' ');
      await writeFile(join(sub, `f${String(f).padStart(3, '0')}.txt`), text.slice(0, size));
    }
  }
  await writeFile(join(dir, '.complete'), '');
}

async function makeMixed(dir: string): Promise<void> {
  if (await isComplete(dir)) return;
  console.error(`generating ${dir} (400 MiB random + 400 MiB text) …`);
  await mkdir(join(dir, 'random'), { recursive: true });
  await mkdir(join(dir, 'text'), { recursive: true });
  for (let i = 0; i < 40; i++) {
    await pipeline(createReadStream('/dev/urandom', { start: 0, end: 10 * MIB - 1 }), createWriteStream(join(dir, 'random', `r${String(i).padStart(2, '0')}.bin`)));
  }
  const next = prng(400);
  const words = Array.from({ length: 5000 }, () => (next() % 1e12).toString(36));
  for (let f = 0; f < 100; f++) {
    const buf = Buffer.allocUnsafe(4 * MIB);
    let o = 0;
    while (o < buf.length) o += buf.write(words[next() % words.length]! + (next() % 11 === 0 ? '\n' : ' '), o);
    await writeFile(join(dir, 'text', `t${String(f).padStart(3, '0')}.txt`), buf);
  }
  await writeFile(join(dir, '.complete'), '');
}

async function tarBytes(dir: string): Promise<number> {
  let n = 0;
  for await (const c of layerTarStream(dir, { kind: 'rootfs' })) n += (c as Buffer).length;
  return n;
}

interface Measure {
  secs: number;
  cpu: number;
  rssMB: number;
  size: number;
}

/** Runs `argv` under /usr/bin/time; the command prints the output size on its last stdout line. */
function timed(argv: string[]): Measure {
  const r = spawnSync('/usr/bin/time', ['-f', 'TIME %e %U %S %M', ...argv], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr}`);
  const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+) (\d+)/.exec(r.stderr);
  if (!m) throw new Error(`no timing from /usr/bin/time: ${r.stderr}`);
  const size = Number(r.stdout.trim().split('\n').at(-1));
  return { secs: Number(m[1]), cpu: Number(m[2]) + Number(m[3]), rssMB: Number(m[4]) / 1024, size };
}

/** Child mode: one writeLayer into a fresh store under `out`; prints the blob size. */
async function child(engine: 'parallel' | 'zlib', dir: string, out: string, level: number): Promise<void> {
  const store = await Store.open(out);
  const layer = await writeLayer(store, dir, { kind: 'rootfs', gzipLevel: level, gzipEngine: engine });
  console.log(layer.size);
}

async function main(argv: string[]): Promise<void> {
  if (argv[0] === '--child') {
    await child(argv[1] as 'parallel' | 'zlib', argv[2]!, argv[3]!, Number(argv[4]));
    return;
  }
  const opt = (name: string, dflt: number): number => {
    const i = argv.indexOf(name);
    return i >= 0 ? Number(argv.splice(i, 2)[1]) : dflt;
  };
  const runs = opt('--runs', 1);
  const noZlib = argv.includes('--no-zlib');
  if (noZlib) argv.splice(argv.indexOf('--no-zlib'), 1);
  const ti = argv.indexOf('--trees');
  const wanted = ti >= 0 ? argv.splice(ti, 2)[1]!.split(',') : ['big', 'small'];
  const level = opt('--level', 6);
  const data = argv[0] ?? '/var/tmp/tsb-gzip-bench';
  const self = fileURLToPath(import.meta.url);
  const makers: Record<string, (dir: string) => Promise<void>> = { big: makeBig, small: makeSmall, mixed: makeMixed };
  const trees: Record<string, string> = {};
  for (const name of wanted) {
    const make = makers[name];
    if (!make) throw new Error(`unknown tree ${name}: use big, small or mixed`);
    trees[name] = join(data, name);
    await make(trees[name]);
  }
  const out = join(data, 'out');
  console.log(`load average before: ${loadavg().map((x) => x.toFixed(2)).join(' ')}; level ${level}; ${runs} run(s) each, best wall time kept; parallel gzip blocks by ${defaultBlockEngine()}`);
  for (const [name, dir] of Object.entries(trees)) {
    // Warm the page cache so no contender pays for the first read.
    execFileSync('bash', ['-c', 'tar -C "$1" -cf - . | cat > /dev/null', '-', dir]);
    const t0 = process.hrtime.bigint();
    const raw = await tarBytes(dir);
    const tarSecs = Number(process.hrtime.bigint() - t0) / 1e9;
    const methods: Record<string, () => Measure> = {
      'writeLayer parallel gzip': () => timed(['node', self, '--child', 'parallel', dir, join(out, 'store'), String(level)]),
      ...(noZlib ? {} : { 'writeLayer zlib (1 stream)': () => timed(['node', self, '--child', 'zlib', dir, join(out, 'store'), String(level)]) }),
      [`tar -c | gzip -${level}`]: () =>
        timed(['bash', '-c', `tar -C "$1" -cf - . | gzip -${level} > "$2/layer.tar.gz" && stat -c %s "$2/layer.tar.gz"`, '-', dir, out]),
    };
    const best: Record<string, Measure> = {};
    for (let r = 0; r < runs; r++) {
      for (const [label, run] of Object.entries(methods)) {
        await mkdir(out, { recursive: true });
        try {
          const m = run();
          if (!best[label] || m.secs < best[label].secs) best[label] = m;
        } finally {
          await rm(out, { recursive: true, force: true });
        }
      }
    }
    const ref = best[`tar -c | gzip -${level}`]!;
    console.log(`\n${name}: ${dir}, tar ${(raw / MB).toFixed(1)} MB (our tar stream alone, no hashing or gzip: ${(raw / MB / tarSecs).toFixed(0)} MB/s)`);
    for (const [label, m] of Object.entries(best)) {
      console.log(
        `  ${label.padEnd(28)} ${m.secs.toFixed(2).padStart(7)} s  ${(raw / MB / m.secs).toFixed(1).padStart(6)} MB/s  CPU ${m.cpu.toFixed(1).padStart(5)} s  ` +
          `out ${(m.size / MB).toFixed(1).padStart(7)} MB (${((100 * m.size) / raw).toFixed(1)}%)  peak RSS ${m.rssMB.toFixed(0).padStart(4)} MB  ×${(ref.secs / m.secs).toFixed(2)} vs tar|gzip`,
      );
    }
  }
  console.log(`\nload average after: ${loadavg().map((x) => x.toFixed(2)).join(' ')}`);
}

await main(process.argv.slice(2));
