/** `tsbuild export [-o FILE] IMAGE`: an image's flattened root filesystem as a tar archive. */
import { exportImage } from '@tsbuild/layer-store';
import { flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore, writeOutput } from './image-output.js';

const HELP = `Usage: tsbuild export [OPTIONS] IMAGE

Export an image's filesystem (layers flattened, whiteouts applied) as a tar archive.

Options:
  -o, --output string   Write to a file, instead of STDOUT
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'output', short: 'o', type: 'string' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length !== 1) throw new UsageError('"export" requires exactly 1 argument.', 'Usage: tsbuild export [OPTIONS] IMAGE');
  const ref = args.positionals[0]!;
  const store = await openStore(ctx);
  await store.resolveImage(ref);
  await writeOutput(ctx, flagString(args, 'output'), 'export', (out) => exportImage(store, ref, out, { signal: ctx.signal }));
  return 0;
}
