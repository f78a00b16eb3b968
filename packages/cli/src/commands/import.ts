/** `tsbuild import FILE|- [REF] [-c CHANGE]... [-m MESSAGE]`: a rootfs tarball as a one-layer image. */
import { createReadStream } from 'node:fs';
import { importRootfs } from '@tsbuild/layer-store';
import { flagList, flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore } from './image-output.js';

const HELP = `Usage: tsbuild import [OPTIONS] file|- [REPOSITORY[:TAG]]

Import the contents from a tarball (plain, gzip or zstd) to create a filesystem image.

Options:
  -c, --change list      Apply Dockerfile instruction to the created image
  -m, --message string   Set commit message for imported image
SOURCE_DATE_EPOCH sets the creation time and clamps file times.
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'change', short: 'c', type: 'string', multiple: true },
    { name: 'message', short: 'm', type: 'string' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  const [file, ref, ...extra] = args.positionals;
  if (file === undefined || extra.length > 0) throw new UsageError('"import" requires 1 or 2 arguments.', 'Usage: tsbuild import [OPTIONS] file|- [REPOSITORY[:TAG]]');
  const epoch = ctx.env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && !/^\d+$/.test(epoch)) throw new UsageError(`invalid SOURCE_DATE_EPOCH "${epoch}"`, 'it is a whole number of seconds since 1970');
  const message = flagString(args, 'message');
  const store = await openStore(ctx);
  const input = file === '-' ? ctx.stdin : createReadStream(file);
  const { id } = await importRootfs(store, input, {
    ...(ref !== undefined ? { ref } : {}),
    changes: flagList(args, 'change'),
    ...(message !== undefined ? { message } : {}),
    ...(epoch !== undefined ? { sourceDateEpoch: Number(epoch) } : { now: new Date() }),
    signal: ctx.signal,
  });
  ctx.stdout.write(`${id}\n`);
  return 0;
}
