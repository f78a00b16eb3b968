/** `tsbuild import FILE|- [REF] [-c CHANGE]... [-m MESSAGE]`: a rootfs tarball as a one-layer image. */
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { importRootfs, isImportURL, openTarballURL, parseReference, ReferenceError, StoreError } from '@tsbuild/layer-store';
import { flagList, flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { configFromChanges } from './import-changes.js';
import { openStore } from './image-output.js';
import { dockerReferenceReason } from './tag.js';

const HELP = `Usage: tsbuild import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]

Import the contents from a tarball (plain, gzip, zstd, xz or bzip2; a file, an http:// or https://
URL, or - for stdin) to create a filesystem image.

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
  if (file === undefined || extra.length > 0) throw new UsageError('"import" requires 1 or 2 arguments.', 'Usage: tsbuild import [OPTIONS] file|URL|- [REPOSITORY[:TAG]]');
  const epoch = ctx.env.SOURCE_DATE_EPOCH;
  if (epoch !== undefined && !/^\d+$/.test(epoch)) throw new UsageError(`invalid SOURCE_DATE_EPOCH "${epoch}"`, 'it is a whole number of seconds since 1970');
  const url = isImportURL(file);
  // dockerd: an empty -m is the default message, which names the source ('-' for a file or stdin)
  const message = flagString(args, 'message') || (url ? `Imported from ${file}` : undefined);
  // docker's CLI opens a file first; the daemon reads the changes, then starts a download (which
  // may fail before anything is printed)
  const local = url || file === '-' ? undefined : await openInput(file);
  if (ref !== undefined) {
    const problem = refProblem(ref);
    if (problem !== undefined) {
      local?.destroy();
      throw problem;
    }
  }
  let config;
  try {
    config = configFromChanges(flagList(args, 'change'));
  } catch (err) {
    local?.destroy();
    throw err;
  }
  let input: Readable;
  if (url) {
    input = await openTarballURL(file, { signal: ctx.signal });
    ctx.stdout.write(`Downloading from ${file}\n`);
  } else {
    input = local ?? ctx.stdin;
  }
  const store = await openStore(ctx);
  const { id } = await importRootfs(store, input, {
    ...(ref !== undefined ? { ref } : {}),
    config,
    ...(message !== undefined ? { message } : {}),
    ...(epoch !== undefined ? { sourceDateEpoch: Number(epoch) } : { now: new Date() }),
    signal: ctx.signal,
  });
  ctx.stdout.write(`${id}\n`);
  return 0;
}

/**
 * The tarball at `file`, opened before anything else is done, with Go's wording for what fails
 * (dockerd's CLI: `open x: no such file or directory`, `read x: is a directory`).
 * @throws StoreError (E_INPUT)
 */
async function openInput(file: string): Promise<Readable> {
  const reason = (err: unknown): string => /^E[A-Z]+: ([^,]+)/.exec((err as Error).message)?.[1] ?? String(err);
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    throw new StoreError(`open ${file}: ${reason(err)}`, { code: 'E_INPUT', cause: err, hint: 'check the path of the tarball given to import (or - for stdin)' });
  }
  if ((await fh.stat()).isDirectory()) {
    await fh.close();
    throw new StoreError(`read ${file}: is a directory`, { code: 'E_INPUT', hint: 'import takes a tarball of a root filesystem; make one with tar -C DIR -c .' });
  }
  return fh.createReadStream();
}

/**
 * What is wrong with import's REPOSITORY[:TAG], in the docker CLI's and dockerd's words
 * (`invalid reference format: repository name must be lowercase`, `cannot import digest
 * reference`); undefined when it is fine.
 */
function refProblem(ref: string): StoreError | undefined {
  try {
    if (parseReference(ref).digest === undefined) return undefined;
    return new StoreError('cannot import digest reference', { code: 'E_REFERENCE', hint: 'name the imported image name:tag' });
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    return new StoreError(dockerReferenceReason(err), { code: 'E_REFERENCE', cause: err, ...(err.hint !== undefined ? { hint: err.hint } : {}) });
  }
}
