/** `tsbuild pull [--platform os/arch[/variant]] [-q] NAME[:TAG|@DIGEST]`: an image from a registry into the store. */
import { parseReference, pull, type Platform, type RegistryEvent } from '@tsbuild/layer-store';
import { flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore } from './image-output.js';
import { credentialsFor } from './login.js';

const HELP = `Usage: tsbuild pull [OPTIONS] NAME[:TAG|@DIGEST]

Download an image from a registry into the store.

Options:
      --insecure          Use plain HTTP (always used for localhost and 127.0.0.1)
      --platform string   Platform to pick from a multi-platform image (os/arch[/variant])
  -q, --quiet             Print only the image reference
`;

/** Parses `linux/amd64`, `linux/arm/v7`. */
export function parsePlatform(s: string): Platform {
  const parts = s.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new UsageError(`invalid platform "${s}"`, 'a platform looks like linux/amd64 or linux/arm/v7');
  }
  return { os: parts[0]!, architecture: parts[1]!, ...(parts[2] ? { variant: parts[2] } : {}) };
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'platform', type: 'string' },
    { name: 'quiet', short: 'q', type: 'boolean' },
    { name: 'insecure', type: 'boolean' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length !== 1) throw new UsageError('"pull" requires exactly 1 argument.', 'Usage: tsbuild pull [OPTIONS] NAME[:TAG|@DIGEST]');
  const input = args.positionals[0]!;
  const ref = parseReference(input);
  const quiet = args.flags.get('quiet')?.[0] === 'true';
  const platformFlag = flagString(args, 'platform');
  const out = (s: string): void => {
    if (!quiet) ctx.stdout.write(s);
  };
  if (ref.digest === undefined && !/:[\w][\w.-]*$/.test(input.slice(input.lastIndexOf('/') + 1))) out('Using default tag: latest\n');
  // as dockerd: `name:tag@digest` is pulled (and named in its lines) by the digest alone
  const pulled = ref.digest !== undefined && ref.tag !== undefined ? parseReference(`${ref.name}@${ref.digest}`) : ref;
  const store = await openStore(ctx);
  // as dockerd: a digest pull names the whole reference; an image whose config is already here
  // lists no layers ("the image already exists locally, no need to pull anything")
  let known = false;
  const onEvent = (e: RegistryEvent): void => {
    if (e.type === 'resolved') out(`${pulled.digest !== undefined ? pulled.familiar() : pulled.tag}: Pulling from ${pulled.path}\n`);
    else if (e.type !== 'blob') return;
    else if (e.kind === 'config') known = e.status === 'exists';
    else if (!known || e.status !== 'exists') out(`${e.id.slice(7, 19)}: ${e.status === 'exists' ? 'Already exists' : 'Pull complete'}\n`);
  };
  const result = await pull(store, input, {
    auth: await credentialsFor(ctx.env, ref.domain),
    insecure: args.flags.get('insecure')?.[0] === 'true',
    signal: ctx.signal,
    onEvent,
    ...(platformFlag !== undefined ? { platform: parsePlatform(platformFlag) } : {}),
  });
  out(`Digest: ${result.digest}\n`);
  out(`Status: ${result.updated ? 'Downloaded newer image' : 'Image is up to date'} for ${pulled.familiar()}\n`);
  ctx.stdout.write(`${ref.full()}\n`);
  return 0;
}
