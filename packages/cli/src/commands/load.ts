/** `tsbuild load [-i FILE] [-q]`: images from a tar archive (docker save, tsbuild save, OCI). */
import { load, loadFile, parseReference } from '@tsbuild/layer-store';
import { flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore } from './image-output.js';

const HELP = `Usage: tsbuild load [OPTIONS]

Load images from a tar archive or STDIN (docker-archive or OCI layout; plain, gzip, xz, bzip2 or zstd).

Options:
  -i, --input string   Read from tar archive file, instead of STDIN
  -q, --quiet          Suppress the load output
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'input', short: 'i', type: 'string' },
    { name: 'quiet', short: 'q', type: 'boolean' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length > 0) throw new UsageError('"load" accepts no arguments.', 'Usage: tsbuild load [OPTIONS]');
  const file = flagString(args, 'input');
  if (file === undefined && ctx.stdin.isTTY) {
    throw new UsageError('requested load from stdin, but stdin is empty', 'pass -i FILE or pipe an archive in');
  }
  const store = await openStore(ctx);
  const images = file === undefined || file === '-' ? await load(store, ctx.stdin, { signal: ctx.signal }) : await loadFile(store, file, { signal: ctx.signal });
  for (const img of images) {
    if (img.tags.length === 0) ctx.stdout.write(`Loaded image ID: ${img.id}\n`);
    for (const t of img.tags) {
      // dockerd's wording (also when the old image keeps other tags)
      const moved = img.moved.find((m) => m.tag === t);
      if (moved !== undefined) ctx.stdout.write(`The image ${parseReference(t).familiar()} already exists, renaming the old one with ID ${moved.oldId} to empty string\n`);
      ctx.stdout.write(`Loaded image: ${parseReference(t).familiar()}\n`);
    }
  }
  return 0;
}
