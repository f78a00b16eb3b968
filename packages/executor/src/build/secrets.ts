/**
 * Build secrets (`--secret id=x,src=file` / `--secret id=x,env=VAR`): the CLI resolves `env=` to a
 * value (the library never reads the environment) and hands a list to build(). A secret reaches a
 * RUN only through `RUN --mount=type=secret`; its value is never in a layer, a cache key or history.
 */
import { readFile } from 'node:fs/promises';
import { BuildError } from './errors.js';

/** One secret given to a build: a file on the host, or a value. */
export type BuildSecret = { readonly id: string; readonly src: string } | { readonly id: string; readonly value: string };

/**
 * Parses a `--secret` flag value: `id=x,src=path` (also `source=`), `id=x,env=VAR`, or `id=x` (then
 * `env=x`, as docker buildx does when neither is given). `getEnv` reads the environment.
 * @throws BuildError E_SECRET on a malformed value or an unset variable.
 */
export function parseSecretFlag(spec: string, getEnv: (name: string) => string | undefined): BuildSecret {
  const fields = new Map<string, string>();
  for (const part of spec.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) throw new BuildError('E_SECRET', `invalid secret "${spec}": "${part}" is not key=value`, { hint: 'use --secret id=NAME,src=FILE or id=NAME,env=VAR' });
    fields.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1));
  }
  const id = fields.get('id');
  if (!id) throw new BuildError('E_SECRET', `invalid secret "${spec}": no id`, { hint: 'use --secret id=NAME,src=FILE or id=NAME,env=VAR' });
  const src = fields.get('src') ?? fields.get('source');
  if (src !== undefined) return { id, src };
  const envName = fields.get('env') ?? id;
  const value = getEnv(envName);
  if (value === undefined) throw new BuildError('E_SECRET', `secret ${id}: environment variable ${envName} is not set`, { hint: `export ${envName}, or give src=FILE` });
  return { id, value };
}

/**
 * The bytes of secret `id`, or undefined when the build was given no such secret.
 * @throws BuildError E_SECRET when its file cannot be read.
 */
export async function secretValue(secrets: readonly BuildSecret[], id: string): Promise<Buffer | undefined> {
  const s = secrets.find((x) => x.id === id);
  if (s === undefined) return undefined;
  if ('value' in s) return Buffer.from(s.value, 'utf8');
  try {
    return await readFile(s.src);
  } catch (cause) {
    throw new BuildError('E_SECRET', `secret ${id}: cannot read ${s.src}`, { cause, hint: 'check the src= path of --secret' });
  }
}
