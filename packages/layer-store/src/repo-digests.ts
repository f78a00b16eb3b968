/**
 * Repository digests: the `repository@sha256:<manifest digest>` references Docker records when an
 * image is pushed to or pulled from a registry (`image inspect` RepoDigests, `images --digests`).
 *
 * They are store-private state in one side file, `repo-digests.json` beside `index.json`:
 * `{"<full repository>@<digest>": "<image ID>"}`, like Docker's reference store (keyed by the
 * canonical reference, valued by the image ID = config digest). The digest is the one the registry
 * knows (an index's digest when a reference named an index), so it need not be a blob of the store.
 * Nothing in `index.json` and no image digest depends on it; a missing or unreadable file reads as
 * empty. Changes happen under the store lock (temp file + fsync + rename).
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from './fsutil.js';
import { isDigest } from './digest.js';
import type { Store } from './store.js';
import type { Digest } from './types.js';

/** Name of the side file in the store root. */
export const REPO_DIGESTS_FILE = 'repo-digests.json';

/** Canonical reference (`127.0.0.1:5000/x@sha256:…`, full form) → image ID. */
export type RepoDigestMap = Map<string, Digest>;

function filePath(store: Store): string {
  return join(store.root, REPO_DIGESTS_FILE);
}

/** Reads the recorded repository digests (empty when none or the file is damaged). */
export async function readRepoDigests(store: Store): Promise<RepoDigestMap> {
  let text: string;
  try {
    text = await readFile(filePath(store), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return new Map();
    throw err;
  }
  const out: RepoDigestMap = new Map();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return out;
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return out;
  for (const [ref, id] of Object.entries(json as Record<string, unknown>)) {
    const at = ref.lastIndexOf('@');
    if (at > 0 && isDigest(ref.slice(at + 1)) && typeof id === 'string' && isDigest(id)) out.set(ref, id as Digest);
  }
  return out;
}

/**
 * Changes the recorded repository digests under the store lock: `fn` edits the map in place.
 * @returns what `fn` returned.
 */
export async function updateRepoDigests<T>(store: Store, fn: (map: RepoDigestMap) => T | Promise<T>): Promise<T> {
  return store.withLock(async () => {
    const map = await readRepoDigests(store);
    const before = JSON.stringify([...map]);
    const result = await fn(map);
    if (JSON.stringify([...map]) !== before) {
      const obj = Object.fromEntries([...map].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
      await writeFileAtomic(filePath(store), `${JSON.stringify(obj, null, 2)}\n`, store.tmpDir);
    }
    return result;
  });
}

/** Records `repository@digest` (repository in full form, `127.0.0.1:5000/x`) for the image `id`. */
export async function recordRepoDigest(store: Store, repository: string, digest: Digest, id: Digest): Promise<void> {
  await updateRepoDigests(store, (map) => {
    map.set(`${repository}@${digest}`, id);
  });
}

/** The repository (full form) of a canonical reference `repo@sha256:…`. */
export function repositoryOf(canonical: string): string {
  return canonical.slice(0, canonical.lastIndexOf('@'));
}

/** The canonical references recorded for image `id`, sorted (Docker's reference store order). */
export function repoDigestsOf(map: RepoDigestMap, id: Digest): string[] {
  return [...map].filter(([, v]) => v === id).map(([k]) => k).sort();
}
