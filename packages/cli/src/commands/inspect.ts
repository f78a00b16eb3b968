/** `tsbuild inspect IMAGE...`: images as JSON, shaped like `docker image inspect`. */
import { inspectImage, type ImageInspect } from '@tsbuild/layer-store';
import { parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore } from './image-output.js';

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [{ name: 'help', type: 'boolean' }]);
  if (args.flags.has('help')) return void ctx.stdout.write('Usage: tsbuild inspect IMAGE [IMAGE...]\n\nDisplay detailed information on one or more images\n'), 0;
  if (args.positionals.length === 0) throw new UsageError('"inspect" requires at least 1 argument.', 'Usage: tsbuild inspect IMAGE [IMAGE...]');
  const store = await openStore(ctx);
  const found: ImageInspect[] = [];
  let failed = false;
  for (const ref of args.positionals) {
    try {
      found.push(await inspectImage(store, ref));
    } catch (err) {
      if ((err as { code?: string }).code !== 'E_IMAGE_NOT_FOUND') throw err;
      ctx.stderr.write(`Error: No such image: ${ref}\n`);
      failed = true;
    }
  }
  ctx.stdout.write(`${JSON.stringify(found, null, 4)}\n`);
  return failed ? 1 : 0;
}
