/**
 * Registry credentials files in the `auths` format Docker (`~/.docker/config.json`) and
 * containers-auth.json share: `{"auths": {"<registry>": {"auth": base64("user:password")}}}`.
 * The caller chooses the files (the CLI resolves them from the environment); writes are atomic
 * and the file is private (mode 0600).
 */
import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { StoreError } from './errors.js';
import { fsyncDir, tempName } from './fsutil.js';
import type { RegistryCredentials } from './registry-client.js';

/** A credentials file that cannot be read, parsed or written. */
export class CredentialsError extends StoreError {
  constructor(message: string, options: { cause?: unknown; hint?: string } = {}) {
    super(message, { code: 'E_CREDENTIALS', ...options });
  }
}

interface AuthEntry {
  auth?: string;
  username?: string;
  password?: string;
  [k: string]: unknown;
}
interface AuthFile {
  auths?: Record<string, AuthEntry>;
  [k: string]: unknown;
}

const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/**
 * The registry key of a server as users type it: scheme and path dropped, Docker Hub's names
 * (and Docker's `https://index.docker.io/v1/`) all become `docker.io`.
 */
export function registryKey(server: string): string {
  let s = server.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = s.indexOf('/');
  if (slash >= 0) s = s.slice(0, slash);
  s = s.toLowerCase();
  return DOCKER_HUB_ALIASES.has(s) ? 'docker.io' : s;
}

async function readAuthFile(file: string): Promise<AuthFile | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CredentialsError(`reading credentials file ${file}`, { cause: err });
  }
  try {
    const parsed = JSON.parse(text) as unknown;
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
    return parsed as AuthFile;
  } catch (err) {
    throw new CredentialsError(`credentials file ${file} is not valid JSON`, { cause: err, hint: 'fix or remove the file' });
  }
}

function decode(entry: AuthEntry, file: string, key: string): RegistryCredentials | undefined {
  if (typeof entry.username === 'string' && typeof entry.password === 'string' && entry.username !== '') {
    return { username: entry.username, password: entry.password };
  }
  if (typeof entry.auth !== 'string' || entry.auth === '') return undefined;
  const plain = Buffer.from(entry.auth, 'base64').toString('utf8');
  const colon = plain.indexOf(':');
  if (colon <= 0) throw new CredentialsError(`credentials for ${key} in ${file} are malformed`, { hint: `log in again with 'tsbuild login ${key}'` });
  return { username: plain.slice(0, colon), password: plain.slice(colon + 1) };
}

/**
 * Looks up credentials for `server` in `files`, in order; the first file with an entry wins.
 * Missing files are skipped. Credential helpers (`credsStore`, `credHelpers`) are not run.
 * @throws CredentialsError for an unreadable or malformed file.
 */
export async function findCredentials(files: readonly string[], server: string): Promise<RegistryCredentials | undefined> {
  const key = registryKey(server);
  for (const file of files) {
    const data = await readAuthFile(file);
    for (const [k, entry] of Object.entries(data?.auths ?? {})) {
      if (registryKey(k) !== key || typeof entry !== 'object' || entry === null) continue;
      const creds = decode(entry, file, key);
      if (creds) return creds;
    }
  }
  return undefined;
}

/**
 * Stores credentials for `server` in `file` (created with mode 0600, its directory 0700), keeping
 * the file's other entries and fields.
 * @throws CredentialsError
 */
export async function saveCredentials(file: string, server: string, creds: RegistryCredentials): Promise<void> {
  const key = registryKey(server);
  const data = (await readAuthFile(file)) ?? {};
  const auths: Record<string, AuthEntry> = {};
  for (const [k, v] of Object.entries(data.auths ?? {})) if (registryKey(k) !== key) auths[k] = v;
  auths[key] = { auth: Buffer.from(`${creds.username}:${creds.password}`).toString('base64') };
  await writeAuthFile(file, { ...data, auths });
}

/**
 * Removes the credentials for `server` from `file`.
 * @returns false when the file had none.
 * @throws CredentialsError
 */
export async function removeCredentials(file: string, server: string): Promise<boolean> {
  const key = registryKey(server);
  const data = await readAuthFile(file);
  if (!data?.auths) return false;
  const kept = Object.entries(data.auths).filter(([k]) => registryKey(k) !== key);
  if (kept.length === Object.keys(data.auths).length) return false;
  await writeAuthFile(file, { ...data, auths: Object.fromEntries(kept) });
  return true;
}

async function writeAuthFile(file: string, data: AuthFile): Promise<void> {
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    // Private from the first byte: the temp file is created 0600 beside the target, then renamed.
    const tmp = tempName(dirname(file), '.auth');
    const fh = await open(tmp, 'wx', 0o600);
    try {
      await fh.writeFile(`${JSON.stringify(data, null, '\t')}\n`);
      await fh.sync();
      await fh.close();
      await rename(tmp, file);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw err;
    }
    await fsyncDir(dirname(file));
  } catch (err) {
    throw new CredentialsError(`writing credentials file ${file}`, { cause: err });
  }
}
