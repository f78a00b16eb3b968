/**
 * `import`: a root filesystem tarball (plain, gzip, bzip2, xz or zstd) becomes a one-layer image, as
 * `docker import` makes it. The tar is applied to a private directory under the store's `tmp/`
 * with the store's safe `applyLayer` (so tar-slip, absolute names, links and whiteouts that point
 * out are refused and nothing outside the store is written), then written back as a deterministic
 * layer. `-c/--change` lines (CMD ENTRYPOINT ENV EXPOSE LABEL ONBUILD USER VOLUME WORKDIR,
 * the set Docker 20.10 accepts) are parsed here by a small parser: the store knows no Dockerfiles.
 */
import { chmod } from 'node:fs/promises';
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { applyLayer, type ApplyLayerOptions } from './apply.js';
import { CorruptLayerError, StoreError } from './errors.js';
import { writeLayer } from './layer-tar.js';
import { parseReference, ReferenceError } from './reference.js';
import type { Store } from './store.js';
import type { Cancellable, ContainerConfig, Descriptor, Digest, ImageConfig } from './types.js';

/** A `--change` line that cannot be applied. */
export class ChangeError extends StoreError {
  constructor(readonly line: string, reason: string) {
    super(`invalid change "${line}": ${reason}`, {
      code: 'E_CHANGE',
      hint: 'a change is a Dockerfile line: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, USER, VOLUME or WORKDIR',
    });
  }
}

/** Options of `importRootfs`. */
export interface ImportOptions extends Cancellable {
  /** Reference to tag the image with; untagged when absent. */
  ref?: string;
  /** Dockerfile lines applied to the empty config, in order (`docker import -c`). */
  changes?: readonly string[];
  /**
   * The container config to use as it is, when the caller read the changes itself (the CLI reads
   * them with the Dockerfile parser, as dockerd does); `changes` is then ignored.
   */
  config?: ContainerConfig;
  /** History comment and the config's `comment`; when absent or empty `Imported from -`, as Docker's. */
  message?: string;
  /** Creation time (seconds since the epoch) and mtime clamp; makes the image reproducible. */
  sourceDateEpoch?: number;
  /** Creation time when there is no `sourceDateEpoch` (the caller's clock). */
  now?: Date;
  /** Refuse tarballs whose uncompressed size exceeds this many bytes. */
  maxBytes?: number;
}

/** The image config `docker import` writes, with Docker's `comment` field. */
export type ImportedConfig = ImageConfig & { comment?: string };

/**
 * Imports the rootfs tarball `input` (consumed) as a one-layer image.
 * @returns the image ID and manifest descriptor.
 * @throws ChangeError for a bad `--change` line (before reading anything); UnsafePathError or
 * CorruptLayerError from applying a hostile or damaged tarball (the store's index is unchanged);
 * ReferenceError for a bad `ref` or a digest reference (dockerd: `cannot import digest reference`).
 */
export async function importRootfs(store: Store, input: Readable, opts: ImportOptions = {}): Promise<{ id: Digest; manifest: Descriptor }> {
  // the layer and its snapshot are written before the index names them: no garbage collection meanwhile
  return store.withLease(() => importTarball(store, input, opts), opts);
}

async function importTarball(store: Store, input: Readable, opts: ImportOptions): Promise<{ id: Digest; manifest: Descriptor }> {
  // as dockerd's ImportImage, before anything is read: a digest reference would name a manifest
  // this image does not have
  if (opts.ref !== undefined && parseReference(opts.ref).digest !== undefined) {
    throw new ReferenceError(opts.ref, 'cannot import digest reference', 'name the image name:tag; its digest is what it is');
  }
  const container = opts.config !== undefined ? structuredClone(opts.config) : applyChanges({}, opts.changes ?? []);
  const created = (opts.sourceDateEpoch !== undefined ? new Date(opts.sourceDateEpoch * 1000) : (opts.now ?? new Date(0))).toISOString().replace('.000Z', 'Z');
  // dockerd's ImportImage: `if len(msg) == 0 { msg = "Imported from " + src }`, so -m '' is the default too
  const comment = opts.message || 'Imported from -';
  const dir = await store.makeTempDir('import');
  try {
    await chmod(dir, 0o755);
    await applyTarball(input, dir, {
      format: 'plain',
      // as Docker 20.10's import (overlay2 ApplyDiff: the untar chrooted into the layer's dir)
      paths: 'chroot',
      uniqueNames: true,
      trailerOptional: true,
      ...(opts.maxBytes !== undefined ? { maxBytes: opts.maxBytes } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const layer = await writeLayer(store, dir, {
      kind: 'rootfs',
      // docker import keeps its input tar as it is: user.* xattrs stay
      userXattrs: true,
      ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    const config: ImportedConfig = {
      created,
      architecture: goArch(process.arch),
      os: 'linux',
      config: container,
      rootfs: { type: 'layers', diff_ids: [layer.diffID] },
      history: [{ created, comment }],
      comment,
    };
    const result = await store.commitImage({ config, layers: [layer], tags: opts.ref !== undefined ? [opts.ref] : [] });
    // the unpacked tree is what unpacking the layer would give: keep it as the layer's snapshot, so
    // the first build on this base does not unpack it again (Docker's import unpacks into its
    // graph driver too)
    await store.adoptSnapshot([layer.diffID], dir, {
      ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    return result;
  } finally {
    await store.removeTree(dir);
  }
}

/** applyLayer, its errors' hints about layer blobs reworded for a user's tarball. */
async function applyTarball(input: Readable, dir: string, opts: ApplyLayerOptions): Promise<void> {
  try {
    await applyLayer(input, dir, opts);
  } catch (err) {
    if (err instanceof CorruptLayerError && err.hint === new CorruptLayerError('').hint) {
      throw new CorruptLayerError(err.message, { cause: err.cause, hint: 'the tarball is damaged, truncated or not a tar; nothing was imported' });
    }
    throw err;
  }
}

/** Node's `process.arch` as Go's GOARCH. */
export function goArch(arch: string): string {
  return ({ x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' } as Record<string, string>)[arch] ?? arch;
}

// ---- --change lines ----

/**
 * Applies `docker import -c` / `docker commit -c` lines to a container config: a simpler reading
 * than Docker's BuildFromConfig (no variable expansion, no HEALTHCHECK, one instruction per line).
 * The CLI reads changes with the Dockerfile parser as dockerd does and passes
 * `ImportOptions.config` instead.
 * @returns a new config; `base` is not modified.
 * @throws ChangeError for an unknown or malformed instruction.
 */
export function applyChanges(base: ContainerConfig, lines: readonly string[]): ContainerConfig {
  const c: ContainerConfig = structuredClone(base);
  let cmdSet = false;
  for (const line of lines) {
    const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*?))?\s*$/.exec(line);
    if (!m) throw new ChangeError(line, 'expected an instruction');
    const keyword = m[1]!.toUpperCase();
    const rest = m[2] ?? '';
    const need = (): void => {
      if (rest === '') throw new ChangeError(line, `${keyword} requires at least one argument`);
    };
    switch (keyword) {
      case 'CMD':
        need();
        c.Cmd = commandForm(rest);
        cmdSet = true;
        break;
      case 'ENTRYPOINT':
        need();
        c.Entrypoint = commandForm(rest);
        // Docker: a new ENTRYPOINT drops a CMD that was not set in the same change list.
        if (!cmdSet) delete c.Cmd;
        break;
      case 'ENV':
        need();
        for (const [k, v] of keyValues(line, rest, true)) {
          const env = (c.Env ?? []).filter((e) => e.split('=')[0] !== k);
          c.Env = [...env, `${k}=${v}`];
        }
        break;
      case 'LABEL':
        need();
        for (const [k, v] of keyValues(line, rest, false)) c.Labels = { ...c.Labels, [k]: v };
        break;
      case 'EXPOSE':
        need();
        for (const p of words(rest)) for (const port of exposedPorts(line, p)) c.ExposedPorts = { ...c.ExposedPorts, [port]: {} };
        break;
      case 'VOLUME': {
        need();
        const vols = jsonArray(rest) ?? words(rest);
        for (const v of vols) {
          if (v.trim() === '') throw new ChangeError(line, 'VOLUME specified can not be an empty string');
          c.Volumes = { ...c.Volumes, [v]: {} };
        }
        break;
      }
      case 'USER':
        need();
        c.User = rest;
        break;
      case 'WORKDIR':
        need();
        c.WorkingDir = posix.isAbsolute(rest) ? posix.normalize(rest) : posix.join('/', c.WorkingDir ?? '/', rest);
        break;
      case 'ONBUILD': {
        need();
        const trigger = /^\s*(\S+)/.exec(rest)![1]!.toUpperCase();
        if (trigger === 'ONBUILD') throw new ChangeError(line, 'chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
        if (trigger === 'FROM' || trigger === 'MAINTAINER') throw new ChangeError(line, `${trigger} isn't allowed as an ONBUILD trigger`);
        c.OnBuild = [...(c.OnBuild ?? []), rest];
        break;
      }
      default:
        throw new ChangeError(line, `${keyword} is not a valid change command`);
    }
  }
  return c;
}

/** JSON form when the text is a JSON array of strings, else shell form wrapped in `/bin/sh -c`. */
function commandForm(rest: string): string[] {
  return jsonArray(rest) ?? ['/bin/sh', '-c', rest];
}

function jsonArray(text: string): string[] | undefined {
  if (!text.trimStart().startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return Array.isArray(v) && v.every((s) => typeof s === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Splits on unquoted whitespace; quotes group and are removed, a backslash escapes the next
 * character (outside single quotes), as Docker's ENV/LABEL word parser does.
 */
function words(text: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === quote) quote = undefined;
      else if (ch === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else cur += ch;
      continue;
    }
    if (/\s/.test(ch)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      continue;
    }
    inWord = true;
    if (ch === '"' || ch === "'") quote = ch;
    else if (ch === '\\' && i + 1 < text.length) cur += text[++i];
    else cur += ch;
  }
  if (inWord) out.push(cur);
  return out;
}

/** `k=v k2="v 2"` pairs, or the legacy `KEY value with spaces` form (ENV and LABEL alike). */
function keyValues(line: string, rest: string, isEnv: boolean): Array<[string, string]> {
  const first = /^(\S+)/.exec(rest)![1]!;
  if (!first.includes('=')) {
    const value = rest.slice(first.length).trim();
    if (value === '' && isEnv) throw new ChangeError(line, 'ENV must have two arguments');
    return [[words(first)[0] ?? first, words(value).join(' ')]];
  }
  return words(rest).map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new ChangeError(line, `"${w}" is not of the form key=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** `80` → `80/tcp`; `53/udp`; a range `8000-8002` → three ports. */
function exposedPorts(line: string, spec: string): string[] {
  const m = /^(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/i.exec(spec);
  if (!m) throw new ChangeError(line, `invalid port "${spec}"`);
  const from = Number(m[1]);
  const to = m[2] !== undefined ? Number(m[2]) : from;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (to < from || to > 65535) throw new ChangeError(line, `invalid port range "${spec}"`);
  const out: string[] = [];
  for (let p = from; p <= to; p++) out.push(`${p}/${proto}`);
  return out;
}
