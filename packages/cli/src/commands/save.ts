/** `tsbuild save [-o FILE] [--format docker|oci] IMAGE...`: images as one tar archive. */
import { save, StoreError } from '@tsbuild/layer-store';
import { flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { isPlainNotFound, openStore, writeOutput } from './image-output.js';

const HELP = `Usage: tsbuild save [OPTIONS] IMAGE [IMAGE...]

Save one or more images to a tar archive (streamed to STDOUT by default).
The archive is read by docker load (Docker >= 20.10) and by OCI tools (oci-archive:).

Options:
  -o, --output string   Write to a file, instead of STDOUT
      --format string   docker (Docker + OCI layout, default) or oci (OCI layout only)
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'output', short: 'o', type: 'string' },
    { name: 'format', type: 'string' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length === 0) throw new UsageError('"save" requires at least 1 argument.', 'Usage: tsbuild save [OPTIONS] IMAGE [IMAGE...]');
  const format = flagString(args, 'format') ?? 'docker';
  if (format !== 'docker' && format !== 'oci') throw new UsageError(`invalid --format "${format}"`, 'use docker or oci');
  const store = await openStore(ctx);
  // save resolves every name before it writes a byte; on a failure the temp file is removed, so a
  // typo leaves no file behind
  try {
    await writeOutput(ctx, flagString(args, 'output'), 'save', (out) => save(store, args.positionals, out, { format, signal: ctx.signal }));
  } catch (err) {
    if (!isPlainNotFound(err)) throw err;
    throw notSaved((err as { ref: string }).ref);
  }
  return 0;
}

/**
 * dockerd's save error for a name that names nothing (checked against dockerd): a tag or digest
 * reference is 'reference does not exist' (it looks the reference up in its reference store), a
 * bare name or ID prefix 'No such image: NAME'.
 */
function notSaved(name: string): StoreError {
  const last = name.slice(name.lastIndexOf('/') + 1);
  const tagged = !/^sha256:[0-9a-f]{64}$/.test(name) && (last.includes(':') || last.includes('@'));
  return new StoreError(tagged ? 'reference does not exist' : `No such image: ${name}`, {
    code: 'E_IMAGE_NOT_FOUND',
    hint: `no image is named ${name}; 'tsbuild images' lists the images in the store`,
  });
}
