/** `tsbuild system df`: disk usage of the store; `tsbuild system prune` is `tsbuild prune`. */
import { systemDf } from '@tsbuild/layer-store';
import { parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { humanSize, openStore, table } from './image-output.js';

const HELP = `Usage: tsbuild system COMMAND

Commands:
  df      Show store disk usage
  prune   Remove unused data (same as tsbuild prune)
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'prune') return (await import('./prune.js')).run(rest, ctx);
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
