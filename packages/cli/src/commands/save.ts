/** `tsbuild save [-o FILE] [--format docker|oci] IMAGE...`: images as one tar archive. */
import { save } from '@tsbuild/layer-store';
import { flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore, writeOutput } from './image-output.js';

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
  await writeOutput(ctx, flagString(args, 'output'), 'save', (out) => save(store, args.positionals, out, { format, signal: ctx.signal }));
  return 0;
}
