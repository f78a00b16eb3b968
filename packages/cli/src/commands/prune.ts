/** `tsbuild prune [-a] [-f]`: remove dangling (or all) images and every blob and snapshot nothing refers to. */
import { prune, pruneCache, StoreError, type ImagePruneOptions } from '@tsbuild/layer-store';
import { flagBool, flagList, flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { humanSize, openStore, waitingForBuilds } from './image-output.js';

/** Reads one line from stdin (the answer to a prompt); '' at end of input. */
export async function readLine(ctx: CliContext): Promise<string> {
  let buf = '';
  for await (const chunk of ctx.stdin) {
    buf += String(chunk);
    const nl = buf.indexOf('\n');
    if (nl >= 0) return buf.slice(0, nl);
  }
  return buf;
}

/** `90s`, `30m`, `24h`, `7d` (Go durations as Docker's until= takes, plus days) → milliseconds. */
function parseDuration(s: string): number {
  const m = /^(\d+(?:\.\d+)?)(s|m|h|d)$/.exec(s.trim());
  if (!m) throw new UsageError(`invalid duration: ${s}`, 'use e.g. 24h, 30m or 7d');
  return Number(m[1]) * ({ s: 1e3, m: 6e4, h: 36e5, d: 864e5 } as Record<string, number>)[m[2] as string]!;
}

function parseBytes(s: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(s.trim());
  if (!m) throw new UsageError(`invalid size: ${s}`, 'use e.g. 512mb or 2gb');
  return Math.floor(Number(m[1]) * 1024 ** ' kmgt'.indexOf((m[2] || ' ').toLowerCase()));
}

/** `prune --cache [--filter until=24h] [--keep-storage SIZE]`: build cache records, then GC. */
async function pruneBuildCache(ctx: CliContext, filter: string | undefined, keep: string | undefined): Promise<number> {
  let usedBefore: Date | undefined;
  if (filter !== undefined) {
    const m = /^until=(.+)$/.exec(filter);
    if (!m) throw new UsageError(`invalid filter: ${filter}`, 'only until=DURATION is supported');
    usedBefore = new Date(Date.now() - parseDuration(m[1] as string));
  }
  const report = await pruneCache(await openStore(ctx), {
    onWait: waitingForBuilds(ctx),
    ...(usedBefore ? { usedBefore } : {}),
    ...(keep !== undefined ? { keepStorage: parseBytes(keep) } : {}),
  });
  ctx.stdout.write(`Deleted ${report.recordsDeleted} build cache records, ${report.blobsDeleted.length} blobs\nTotal reclaimed space: ${humanSize(report.reclaimed, 4)}\n`);
  return 0;
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'all', short: 'a', type: 'boolean' },
    { name: 'force', short: 'f', type: 'boolean' },
    { name: 'help', type: 'boolean' },
    { name: 'cache', type: 'boolean' },
    { name: 'filter', type: 'string', multiple: true },
    { name: 'keep-storage', type: 'string' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write('Usage: tsbuild prune [OPTIONS]\n\nRemove dangling images and unreferenced blobs and snapshots\n\nOptions:\n  -a, --all     Remove all images, not only dangling ones, and the build cache\n  -f, --force   Do not prompt for confirmation\n'), 0;
  if (args.positionals.length > 0) throw new UsageError('"prune" accepts no arguments.');
  // the docker CLI's -a is the filter dangling=false
  const filterFlags = [...flagList(args, 'filter'), ...(flagBool(args, 'all') ? ['dangling=false'] : [])];
  if (!flagBool(args, 'force')) {
    const what = flagBool(args, 'all') ? 'all images without at least one container associated to them.' : 'all dangling images and unreferenced data.';
    ctx.stdout.write(`WARNING! This will remove ${what}\nAre you sure you want to continue? [y/N] `);
    const answer = (await readLine(ctx)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') return 0;
  }
  if (flagBool(args, 'cache')) return pruneBuildCache(ctx, flagList(args, 'filter').at(-1), flagString(args, 'keep-storage'));
  const { images, reclaimed } = await pruneImages(ctx, filterFlags, false);
  if (images !== '') ctx.stdout.write(`${images}\n`);
  ctx.stdout.write(`Total reclaimed space: ${humanSize(reclaimed, 4)}\n`);
  return 0;
}

/**
 * The image part of `prune` and `system prune`: dockerd's 'Deleted Images:' block ('' when none
 * went) and the bytes freed. With `dangling=false` (-a) and no other filter the build cache goes
 * too: Docker's classic builder keeps its cache as the parent images of what it built, which
 * `image prune -a` removes with them; `cacheRecords` adds dockerd's 'Deleted build cache
 * objects:' block for `system prune`.
 */
export async function pruneImages(ctx: CliContext, filterFlags: readonly string[], cacheRecords: boolean): Promise<{ images: string; cache: string; reclaimed: number }> {
  const filters = imagePruneFilters(filterFlags, new Date());
  const store = await openStore(ctx);
  // work dirs of killed builds first: their sandboxes ended, mounts gone, dirs removed
  const { reapStaleWork } = await import('@tsbuild/executor');
  await reapStaleWork(store);
  const report = await prune(store, { ...filters, onWait: waitingForBuilds(ctx) });
  let images = '';
  if (report.images.length > 0) {
    // as dockerd: each image's references (untagged:), the image, then its layers no other
    // image has (deleted:, by chain ID)
    const lines = report.images.map((i) => [...i.untagged.map((u) => `untagged: ${u}\n`), ...[i.deleted, ...i.layers].map((d) => `deleted: ${d}\n`)].join(''));
    images = `Deleted Images:\n${lines.join('')}`;
  }
  const unfiltered = filters.until === undefined && filters.labels === undefined && filters.notLabels === undefined;
  if (filters.all !== true || !unfiltered) return { images, cache: '', reclaimed: report.reclaimed };
  const cache = await pruneCache(store, { onWait: waitingForBuilds(ctx) });
  const objects = cacheRecords && cache.records.length > 0 ? `Deleted build cache objects:\n${cache.records.map((r) => `${r}\n`).join('')}` : '';
  return { images, cache: objects, reclaimed: report.reclaimed + cache.reclaimed };
}

/**
 * `prune --filter` for images, as Docker 20.10's image prune takes them: `until=` (a Go duration
 * before `now`, an RFC 3339 time or date, or Unix seconds), `label=KEY[=VALUE]`, `label!=…`, and
 * `dangling=true` (what it does anyway). dockerd's errors: `Invalid filter 'KEY'`, `failed to parse
 * value as time or duration: "X"`, `more than one until filter specified`.
 * @throws UsageError for a flag that is not name=value; StoreError E_FILTER for the rest.
 */
export function imagePruneFilters(flags: readonly string[], now: Date): Pick<ImagePruneOptions, 'all' | 'until' | 'labels' | 'notLabels'> {
  const out: { all?: boolean; until?: Date; labels?: string[]; notLabels?: string[] } = {};
  const bad = (message: string, hint: string): StoreError => new StoreError(message, { code: 'E_FILTER', hint });
  let untils = 0;
  const dangling: string[] = [];
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq < 0) throw new UsageError(`invalid argument "${f}" for "--filter" flag: bad format of filter (expected name=value)`);
    // the docker CLI's filters.ParseFlag: the name lower-cased, both sides trimmed; 'label!=x' is the key 'label!'
    const key = f.slice(0, eq).trim().toLowerCase();
    const value = f.slice(eq + 1).trim();
    if (key === 'until') {
      if (++untils > 1) throw bad('more than one until filter specified', 'give one until=');
      out.until = pruneTime(value, now);
    } else if (key === 'label') (out.labels ??= []).push(value);
    else if (key === 'label!') (out.notLabels ??= []).push(value);
    // dockerd's ExactMatch: 'false' or '0' anywhere means every image, else each must be true/1
    else if (key === 'dangling' && ['false', '0'].includes(value)) out.all = true;
    else if (key === 'dangling') dangling.push(value);
    else throw bad(`Invalid filter '${key}'`, 'prune takes until=, label=, label!= and dangling= filters');
  }
  const wrong = dangling.filter((v) => v !== 'true' && v !== '1');
  if (out.all !== true && wrong.length > 0) throw bad(`Invalid filter 'dangling=[${wrong.join(' ')}]'`, 'dangling= takes true or false (-a is dangling=false)');
  return out;
}

// (µ as escapes: the CLI bundle is kept ASCII, see scripts/bundle-cli.mjs)
const GO_UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, '\u00b5s': 1e-3, '\u03bcs': 1e-3, ms: 1, s: 1e3, m: 6e4, h: 36e5 };

/** docker's timetypes.GetTimestamp for until=: a Go duration before now, a time, or Unix seconds. */
function pruneTime(value: string, now: Date): Date {
  const duration = /^([+-]?)((?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+$/.test(value) || value === '0';
  if (duration) {
    let ms = 0;
    for (const m of value.matchAll(/(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)/g)) ms += Number(m[1]) * GO_UNITS[m[2]!]!;
    return new Date(now.getTime() - (value.startsWith('-') ? -ms : ms));
  }
  if (/^\d+(\.\d+)?$/.test(value)) return new Date(Number(value) * 1000);
  if (/^\d{4}-\d{2}-\d{2}/.test(value)) {
    const t = Date.parse(value);
    if (!Number.isNaN(t)) return new Date(t);
  }
  throw new StoreError(`failed to parse value as time or duration: ${JSON.stringify(value)}`, { code: 'E_FILTER', hint: 'until= takes a duration (24h, 90m), a time (2026-01-02T15:04:05Z) or Unix seconds' });
}
