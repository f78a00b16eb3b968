/**
 * `tsbuild login [-u USER] [-p PASS | --password-stdin] [SERVER]`: checks credentials against a
 * registry and stores them in `${XDG_CONFIG_HOME:-~/.config}/tsbuild/auth.json` (mode 0600).
 * Also the place where the CLI finds credentials for push and pull: that file first, then Docker's
 * `${DOCKER_CONFIG:-~/.docker}/config.json` (its `auths`; credential helpers are not run).
 */
import { homedir } from 'node:os';
import { join } from 'node:path';
import { checkLogin, findCredentials, registryKey, saveCredentials, type RegistryCredentials } from '@tsbuild/layer-store';
import { flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';

const HELP = `Usage: tsbuild login [OPTIONS] [SERVER]

Log in to a container registry (Docker Hub when no server is given).
Credentials are checked against the registry, then stored in
\${XDG_CONFIG_HOME:-~/.config}/tsbuild/auth.json.

Options:
  -p, --password string   Password
      --password-stdin    Take the password from stdin
  -u, --username string   Username
      --insecure          Use plain HTTP (always used for localhost and 127.0.0.1)
`;

type Env = CliContext['env'];

/** tsbuild's own credentials file. */
export function authFile(env: Env): string {
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(config, 'tsbuild', 'auth.json');
}

/** Credentials files in lookup order: tsbuild's, then Docker's config.json. */
export function authFiles(env: Env): string[] {
  const docker = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  return [authFile(env), join(docker, 'config.json')];
}

/** The stored credentials for a registry domain, if any. */
export function credentialsFor(env: Env, domain: string): Promise<RegistryCredentials | undefined> {
  return findCredentials(authFiles(env), domain);
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'username', short: 'u', type: 'string' },
    { name: 'password', short: 'p', type: 'string' },
    { name: 'password-stdin', type: 'boolean' },
    { name: 'insecure', type: 'boolean' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length > 1) throw new UsageError('"login" requires at most 1 argument.', 'Usage: tsbuild login [OPTIONS] [SERVER]');
  const server = registryKey(args.positionals[0] ?? 'docker.io');
  const username = flagString(args, 'username');
  let password = flagString(args, 'password');
  const fromStdin = args.flags.get('password-stdin')?.[0] === 'true';
  if (fromStdin) {
    if (password !== undefined) throw new UsageError('--password and --password-stdin are mutually exclusive');
    if (username === undefined) throw new UsageError('must provide --username with --password-stdin');
    password = (await readAll(ctx.stdin)).replace(/[\r\n]+$/, '');
  } else if (password !== undefined) {
    ctx.stderr.write('WARNING! Using --password via the CLI is insecure. Use --password-stdin.\n');
  }
  if (username === undefined || username === '') throw new UsageError('username is required', 'pass -u USER (interactive prompts are not supported)');
  if (password === undefined || password === '') throw new UsageError('password is required', 'pass --password-stdin and pipe the password in, or -p PASS');
  const auth = { username, password };
  await checkLogin(server, { auth, insecure: args.flags.get('insecure')?.[0] === 'true', signal: ctx.signal });
  await saveCredentials(authFile(ctx.env), server, auth);
  ctx.stdout.write('Login Succeeded\n');
  return 0;
}
