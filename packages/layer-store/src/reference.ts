/**
 * Image references, normalised exactly as Docker does (github.com/distribution/reference):
 * `hello` → `docker.io/library/hello:latest`, `user/app` → `docker.io/user/app:latest`,
 * `localhost:5000/a/b:t`, `name@sha256:…`, `name:tag@sha256:…`.
 */
import { StoreError } from './errors.js';
import type { Digest } from './types.js';

/** A malformed image reference. */
export class ReferenceError extends StoreError {
  /**
   * @param reason what is wrong, without the input (`repository name must be lowercase`);
   * kept as `reason` so a caller can word it its own way.
   */
  constructor(readonly input: string, readonly reason: string, hint?: string) {
    super(`invalid reference "${input}": ${reason}`, {
      code: 'E_REFERENCE',
      hint: hint ?? 'a reference looks like name, name:tag, registry:port/path/name:tag or name@sha256:<digest>',
    });
  }
}

/** A parsed, normalised image reference. */
export interface Reference {
  /** Registry host (and port), e.g. `docker.io`, `localhost:5000`. */
  readonly domain: string;
  /** Repository path inside the registry, e.g. `library/hello`. */
  readonly path: string;
  /** Tag, `latest` when neither tag nor digest was given; undefined for a digest-only reference. */
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
  /** `domain/path`, e.g. `docker.io/library/hello`. */
  readonly name: string;
  /** Full form: `docker.io/library/hello:latest` (and `@sha256:…` when it has a digest). */
  full(): string;
  /** Docker's short display form: `hello:latest`, `user/app:1`, `localhost:5000/a/b:t`. */
  familiar(): string;
  /** Familiar name without tag or digest: `hello`, `user/app`. */
  familiarName(): string;
}

const DEFAULT_DOMAIN = 'docker.io';
const LEGACY_DOMAIN = 'index.docker.io';
const OFFICIAL_PREFIX = 'library/';

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_RE = new RegExp(`^(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;
const SHA256_RE = /^sha256:[0-9a-f]{64}$/;
const HEX64_RE = /^[a-f0-9]{64}$/;
const NAME_TOTAL_LENGTH_MAX = 255;

/** `name[:tag][@digest]` split as written, nothing checked (a `:` before the last `/` is a port). */
function splitTagDigest(input: string): { name: string; tag?: string; digest?: string } {
  let name = input;
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
  }
  const colon = name.lastIndexOf(':');
  if (colon <= name.lastIndexOf('/')) return { name, ...(digest !== undefined ? { digest } : {}) };
  return { name: name.slice(0, colon), tag: name.slice(colon + 1), ...(digest !== undefined ? { digest } : {}) };
}

/**
 * Parses and normalises an image reference like `docker pull` does. A reference without tag or
 * digest gets the tag `latest`.
 * @throws ReferenceError (code E_REFERENCE) for anything Docker rejects: uppercase repository
 * names, a 64-hex name, bad tags or digests, empty components, names over 255 characters.
 */
export function parseReference(input: string): Reference {
  if (input === '') throw new ReferenceError(input, 'reference is empty');
  if (HEX64_RE.test(input)) {
    throw new ReferenceError(input, 'cannot specify 64-byte hexadecimal strings as a repository name', 'to name an image by ID, use sha256:<id>');
  }
  const split = splitTagDigest(input);
  const rest = split.name;
  const d = split.digest;
  if (d !== undefined && !DIGEST_RE.test(d)) throw new ReferenceError(input, `invalid digest "${d}"`);
  if (d !== undefined && !SHA256_RE.test(d)) throw new ReferenceError(input, `unsupported digest "${d}"`, 'only sha256 digests (sha256:<64 hex>) are supported');
  const digest = d as Digest | undefined;
  const tag = split.tag;
  if (tag !== undefined && !TAG_RE.test(tag)) throw new ReferenceError(input, `invalid tag "${tag}"`, 'a tag is up to 128 letters, digits, _, . and -, not starting with . or -');
  let domain: string;
  let path: string;
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  // Docker 20.10's splitDockerDomain: a registry has a dot or a port, or is localhost ("Up/x" is
  // a repository path, so an uppercase error; newer distribution/reference takes "Up" as a host)
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    domain = first;
    path = rest.slice(slash + 1);
    if (!DOMAIN_RE.test(domain)) throw new ReferenceError(input, `invalid registry "${domain}"`);
  } else {
    domain = DEFAULT_DOMAIN;
    path = rest;
  }
  if (domain === LEGACY_DOMAIN) domain = DEFAULT_DOMAIN;
  if (domain === DEFAULT_DOMAIN && !path.includes('/')) path = OFFICIAL_PREFIX + path;
  if (path !== path.toLowerCase()) {
    // the name lowercased (rest is input without its tag and digest, which keep their case)
    throw new ReferenceError(input, 'repository name must be lowercase', `try "${rest.toLowerCase()}${input.slice(rest.length)}"`);
  }
  if (!PATH_RE.test(path)) throw new ReferenceError(input, 'invalid reference format');
  const name = `${domain}/${path}`;
  if (name.length > NAME_TOTAL_LENGTH_MAX) throw new ReferenceError(input, `repository name must not be more than ${NAME_TOTAL_LENGTH_MAX} characters`);
  return makeReference(domain, path, tag === undefined && digest === undefined ? 'latest' : tag, digest);
}

function makeReference(domain: string, path: string, tag: string | undefined, digest: Digest | undefined): Reference {
  const name = `${domain}/${path}`;
  const suffix = `${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  const familiarName = (): string => {
    if (domain !== DEFAULT_DOMAIN) return name;
    return path.startsWith(OFFICIAL_PREFIX) && !path.slice(OFFICIAL_PREFIX.length).includes('/') ? path.slice(OFFICIAL_PREFIX.length) : path;
  };
  return {
    domain,
    path,
    tag,
    digest,
    name,
    full: () => name + suffix,
    familiar: () => familiarName() + suffix,
    familiarName,
  };
}

/** Returns the reference with its digest dropped (keeps the tag; `latest` if it had none). */
export function withoutDigest(ref: Reference): Reference {
  return makeReference(ref.domain, ref.path, ref.tag ?? 'latest', undefined);
}

/** How a stored reference (an `index.json` ref name) reads, also one `parseReference` now refuses. */
export interface StoredName {
  /** Familiar repository (`hello`, `user/app`, `localhost:5000/a`), or the stored name's own text. */
  readonly repository: string;
  /** Repository for comparisons: the full name (`docker.io/library/hello`), or `repository` for a legacy name. */
  readonly name: string;
  readonly tag: string | undefined;
  readonly digest: Digest | undefined;
  /** Familiar form as Docker shows it (`hello:1`, `Up/x:latest`). */
  readonly familiar: string;
  /** True when `parseReference` refuses the stored text (an older version wrote it). */
  readonly legacy: boolean;
}

/**
 * Reads a reference stored in the index. One that `parseReference` now refuses (an uppercase
 * `Up/x:latest` an older version tagged) is split as it is stored (Docker Hub's `docker.io/` and
 * `library/` prefixes dropped) instead of failing, so it can still be listed, inspected and removed.
 */
export function storedName(stored: string): StoredName {
  try {
    const ref = parseReference(stored);
    return { repository: ref.familiarName(), name: ref.name, tag: ref.tag, digest: ref.digest, familiar: ref.familiar(), legacy: false };
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
  }
  const hub = stored.startsWith(`${DEFAULT_DOMAIN}/`) ? stored.slice(DEFAULT_DOMAIN.length + 1) : undefined;
  const { name: rest, tag, digest: d } = splitTagDigest(hub === undefined ? stored : hub.replace(/^library\/(?=[^/@:]+(?:[:@]|$))/, ''));
  const digest = d !== undefined && SHA256_RE.test(d) ? (d as Digest) : undefined;
  const familiar = `${rest}${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
  return { repository: rest, name: rest, tag, digest, familiar, legacy: true };
}

/**
 * Whether `input` names the legacy stored reference `stored` (see {@link storedName}): its stored
 * text, its familiar form, or its repository alone when its tag is `latest`.
 */
export function namesLegacyReference(stored: string, input: string): boolean {
  const s = storedName(stored);
  if (!s.legacy) return false;
  if (input === stored || input === s.familiar) return true;
  return s.tag === 'latest' && s.digest === undefined && input === s.repository;
}

/** Why `input` is neither a reference nor an image ID (prefix), or undefined when it is one. */
export function referenceProblem(input: string): ReferenceError | undefined {
  if (/^(?:sha256:)?[a-f0-9]{1,64}$/.test(input)) return undefined;
  try {
    parseReference(input);
    return undefined;
  } catch (err) {
    if (err instanceof ReferenceError) return err;
    throw err;
  }
}
