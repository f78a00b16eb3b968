/** `tsbuild push [-q] NAME[:TAG]`: an image from the store to its registry. */
import { parseReference, push, type RegistryEvent } from '@tsbuild/layer-store';
import { parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { openStore } from './image-output.js';
import { credentialsFor } from './login.js';

const HELP = `Usage: tsbuild push [OPTIONS] NAME[:TAG]

Upload an image from the store to a registry.

Options:
      --insecure   Use plain HTTP (always used for localhost and 127.0.0.1)
  -q, --quiet      Suppress verbose output
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'quiet', short: 'q', type: 'boolean' },
    { name: 'insecure', type: 'boolean' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length !== 1) throw new UsageError('"push" requires exactly 1 argument.', 'Usage: tsbuild push [OPTIONS] NAME[:TAG]');
  const ref = parseReference(args.positionals[0]!);
  const quiet = args.flags.get('quiet')?.[0] === 'true';
  const out = (s: string): void => {
    if (!quiet) ctx.stdout.write(s);
  };
  const store = await openStore(ctx);
  // as the docker 20.10 CLI: a name without tag pushes `latest` and says so
  if (ref.digest === undefined && !/:[\w][\w.-]*$/.test(args.positionals[0]!.slice(args.positionals[0]!.lastIndexOf('/') + 1))) out('Using default tag: latest\n');
  out(`The push refers to repository [${ref.name}]\n`);
  const onEvent = (e: RegistryEvent): void => {
    // dockerd without a terminal: each layer's 'Preparing', then what became of it
    if (e.type === 'preparing') out(e.ids.map((id) => `${id.slice(7, 19)}: Preparing\n`).join(''));
    if (e.type === 'blob' && e.kind === 'layer') {
      out(`${e.id.slice(7, 19)}: ${e.status === 'exists' ? 'Layer already exists' : e.status === 'mounted' ? `Mounted from ${e.from ?? ''}` : 'Pushed'}\n`);
    }
  };
  const result = await push(store, args.positionals[0]!, {
    auth: await credentialsFor(ctx.env, ref.domain),
    insecure: args.flags.get('insecure')?.[0] === 'true',
    signal: ctx.signal,
    onEvent,
  });
  out(`${ref.tag}: digest: ${result.digest} size: ${result.size}\n`);
  if (quiet) ctx.stdout.write(`${ref.full()}\n`);
  return 0;
}
