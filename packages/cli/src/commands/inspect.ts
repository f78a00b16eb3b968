/** `tsbuild inspect IMAGE...`: images as JSON, shaped like `docker image inspect`. */
import { inspectImage, type ImageInspect } from '@tsbuild/layer-store';
import { flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore, parseFormat, runFormat } from './image-output.js';
import { referenceReason } from './tag.js';

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'format', short: 'f', type: 'string' },
    { name: 'type', type: 'string' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) {
    ctx.stdout.write('Usage: tsbuild inspect [OPTIONS] IMAGE [IMAGE...]\n\nDisplay detailed information on one or more images\n\nOptions:\n  -f, --format string   Format the output using the given Go template\n');
    return 0;
  }
  const type = flagString(args, 'type');
  if (type !== undefined && type !== 'image') throw new UsageError(`"${type}" is not a valid value for --type`, 'tsbuild stores images only: --type image');
  const format = flagString(args, 'format');
  const tpl = format === undefined ? undefined : parseFormat(format.replace(/\\t/g, '\t').replace(/\\n/g, '\n'));
  if (args.positionals.length === 0) throw new UsageError('"inspect" requires at least 1 argument.', 'Usage: tsbuild inspect IMAGE [IMAGE...]');
  const store = await openStore(ctx);
  const found: ImageInspect[] = [];
  let failed = false;
  for (const ref of args.positionals) {
    try {
      found.push(await inspectImage(store, ref));
    } catch (err) {
      // as dockerd: an ID prefix several images have names no image; the other names go on
      const code = (err as { code?: string }).code;
      if (code !== 'E_IMAGE_NOT_FOUND' && code !== 'E_IMAGE_AMBIGUOUS') throw err;
      const bad = referenceReason(err);
      ctx.stderr.write(bad !== undefined ? `Error response: no such image: ${ref}: ${bad}\n` : `Error: No such image: ${ref}\n`);
      failed = true;
    }
  }
  // as Docker: a template runs once per image, each result on its own line
  if (tpl !== undefined) ctx.stdout.write(found.map((img) => `${runFormat(tpl, img)}\n`).join(''));
  else ctx.stdout.write(`${JSON.stringify(found, null, 4)}\n`);
  return failed ? 1 : 0;
}
