/** `tsbuild logout [SERVER]`: removes the credentials `tsbuild login` stored for a registry. */
import { registryKey, removeCredentials } from '@tsbuild/layer-store';
import { parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { authFile } from './login.js';

const HELP = `Usage: tsbuild logout [SERVER]

Log out from a container registry (Docker Hub when no server is given).
Removes the credentials tsbuild login stored; Docker's own config.json is left alone.
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [{ name: 'help', type: 'boolean' }]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length > 1) throw new UsageError('"logout" requires at most 1 argument.', 'Usage: tsbuild logout [SERVER]');
  const server = registryKey(args.positionals[0] ?? 'docker.io');
  // as the docker 20.10 CLI (checked: 20.10.24), also when there was nothing to remove; Docker Hub
  // is named by its legacy index address
  await removeCredentials(authFile(ctx.env), server);
  ctx.stdout.write(`Removing login credentials for ${server === 'docker.io' ? 'https://index.docker.io/v1/' : server}\n`);
  return 0;
}
