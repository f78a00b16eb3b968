/** `tsbuild rmi [-f] IMAGE...`: remove tags and images; content goes when nothing refers to it. */
import { collectGarbage, removeImage } from '@tsbuild/layer-store';
import { flagBool, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore, waitingForBuilds } from './image-output.js';
import { referenceReason } from './tag.js';

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'force', short: 'f', type: 'boolean' },
    { name: 'no-prune', type: 'boolean' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write('Usage: tsbuild rmi [OPTIONS] IMAGE [IMAGE...]\n\nRemove one or more images\n\nOptions:\n  -f, --force      Force removal of the image\n      --no-prune   Do not delete unreferenced content\n'), 0;
  if (args.positionals.length === 0) throw new UsageError('"rmi" requires at least 1 argument.', 'Usage: tsbuild rmi [OPTIONS] IMAGE [IMAGE...]');
  const store = await openStore(ctx);
  const force = flagBool(args, 'force');
  let failed = false;
  let deleted = false;
  for (const ref of args.positionals) {
    try {
      const r = await removeImage(store, ref, { force });
      for (const u of r.untagged) ctx.stdout.write(`Untagged: ${u}\n`);
      if (r.deleted) {
        // then each layer it released, by chain ID, top first (as dockerd)
        ctx.stdout.write([r.deleted, ...r.layers].map((d) => `Deleted: ${d}\n`).join(''));
        deleted = true;
      }
    } catch (err) {
      const e = err as { code?: string; message?: string };
      const bad = referenceReason(err);
      // dockerd refuses a name that is no valid reference before looking for it
      if (bad !== undefined) ctx.stderr.write(`Error response: ${bad}\n`);
      // dockerd finds no image for an ID prefix several images have
      else if (e.code === 'E_IMAGE_NOT_FOUND' || e.code === 'E_IMAGE_AMBIGUOUS') ctx.stderr.write(`Error: No such image: ${ref}\n`);
      else if (typeof e.code === 'string' && e.code.startsWith('E_')) ctx.stderr.write(`Error response: ${e.message}\n`);
      else throw err;
      failed = true;
    }
  }
  if (deleted && !flagBool(args, 'no-prune')) await collectGarbage(store, { onWait: waitingForBuilds(ctx) });
  return failed ? 1 : 0;
}
