/** `tsbuild tag SOURCE TARGET`: a new reference to an image. */
import { tagImage } from '@tsbuild/layer-store';
import { parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore } from './image-output.js';

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [{ name: 'help', type: 'boolean' }]);
  if (args.flags.has('help')) return void ctx.stdout.write('Usage: tsbuild tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\nCreate a tag TARGET_IMAGE that refers to SOURCE_IMAGE\n'), 0;
  if (args.positionals.length !== 2) throw new UsageError('"tag" requires exactly 2 arguments.', 'Usage: tsbuild tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]');
  const store = await openStore(ctx);
  await tagImage(store, args.positionals[0]!, args.positionals[1]!);
  return 0;
}
