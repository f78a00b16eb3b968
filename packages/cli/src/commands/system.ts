/** `tsbuild system df`: disk usage of the store; `tsbuild system prune [-a]`: images (and build cache). */
import { systemDf } from '@tsbuild/layer-store';
import { flagBool, flagList, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { humanSize, openStore, table } from './image-output.js';

const HELP = `Usage: tsbuild system COMMAND

Commands:
  df      Show store disk usage
  prune   Remove unused data (-a: all images and the build cache)
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'prune') return systemPrune(rest, ctx);
  if (sub === undefined || sub === '--help' || sub === '-h') {
    ctx.stdout.write(HELP);
    return sub === undefined ? 1 : 0;
  }
  if (sub !== 'df') throw new UsageError(`unknown system command "${sub}"`, 'see tsbuild system --help');
  const args = parseArgs(rest, []);
  if (args.positionals.length > 0) throw new UsageError('"system df" accepts no arguments.');
  const rows = await systemDf(await openStore(ctx));
  // as the docker CLI's disk usage formatter: units.HumanSize (4 significant digits), the share only
  // when the total is not 0, and never for the build cache
  const reclaimable = (r: (typeof rows)[number]): string =>
    r.size > 0 && r.type !== 'Build Cache' ? `${humanSize(r.reclaimable, 4)} (${Math.trunc((r.reclaimable * 100) / r.size)}%)` : humanSize(r.reclaimable, 4);
  ctx.stdout.write(
    table([
      ['TYPE', 'TOTAL', 'ACTIVE', 'SIZE', 'RECLAIMABLE'],
      ...rows.map((r) => [r.type, String(r.total), String(r.active), humanSize(r.size, 4), reclaimable(r)]),
    ]),
  );
  return 0;
}

/**
 * `system prune [-a] [-f] [--filter F]`, shaped as the docker 20.10 CLI's: its warning (we have no
 * containers, networks or volumes), the 'Deleted Images:' block, with -a the 'Deleted build cache
 * objects:' block (our cache records: the classic builder's cache is the parent images -a removes),
 * each followed by an empty line, then the total.
 */
async function systemPrune(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'all', short: 'a', type: 'boolean' },
    { name: 'force', short: 'f', type: 'boolean' },
    { name: 'filter', type: 'string', multiple: true },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write('Usage: tsbuild system prune [OPTIONS]\n\nRemove unused data\n\nOptions:\n  -a, --all      Remove all images, not only dangling ones, and the build cache\n      --filter   Provide filter values (e.g. label=<key>=<value>)\n  -f, --force    Do not prompt for confirmation\n'), 0;
  if (args.positionals.length > 0) throw new UsageError('"system prune" accepts no arguments.');
  const all = flagBool(args, 'all');
  const filters = flagList(args, 'filter');
  const { pruneImages, readLine } = await import('./prune.js');
  if (!flagBool(args, 'force')) {
    const warnings = all ? ['all images without at least one container associated to them', 'all build cache'] : ['all dangling images'];
    const filtered = filters.length > 0 ? `\n  Items to be pruned will be filtered with:\n${filters.map((f) => `  - ${f}\n`).join('')}` : '';
    ctx.stdout.write(`WARNING! This will remove:\n${warnings.map((w) => `  - ${w}\n`).join('')}${filtered}\nAre you sure you want to continue? [y/N] `);
    const answer = (await readLine(ctx)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') return 0;
  }
  const { images, cache, reclaimed } = await pruneImages(ctx, [...filters, ...(all ? ['dangling=false'] : [])], true);
  for (const block of [images, cache]) if (block !== '') ctx.stdout.write(`${block}\n`);
  ctx.stdout.write(`Total reclaimed space: ${humanSize(reclaimed, 4)}\n`);
  return 0;
}
