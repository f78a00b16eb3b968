/**
 * HTTP client of one repository of an OCI distribution registry
 * (https://github.com/opencontainers/distribution-spec/blob/main/spec.md) with Docker's
 * authentication: anonymous, Basic, and the Bearer token flow
 * (https://distribution.github.io/distribution/spec/auth/token/).
 * Uses Node's global `fetch` (undici); request and response bodies are streams.
 */
import { Readable } from 'node:stream';
import { StoreError, type ErrorOptions } from './errors.js';

/** Credentials for a registry. */
export interface RegistryCredentials {
  username: string;
  password: string;
}

/** One entry of a registry's error body (`{"errors":[{"code":…,"message":…}]}`). */
export interface RegistryErrorDetail {
  code: string;
  message: string;
}

/**
 * A registry request failed: network error, unexpected status, bad auth, malformed answer.
 * `status` is the HTTP status (0 when no response), `errors` the registry's own error list.
 */
export class RegistryError extends StoreError {
  readonly status: number;
  readonly errors: RegistryErrorDetail[];
  constructor(message: string, info: { status?: number; errors?: RegistryErrorDetail[] } & ErrorOptions = {}) {
    super(message, { code: 'E_REGISTRY', ...(info.hint !== undefined ? { hint: info.hint } : {}), ...(info.cause !== undefined ? { cause: info.cause } : {}) });
    this.status = info.status ?? 0;
    this.errors = info.errors ?? [];
  }
}

/** Options of a client. */
export interface RegistryClientOptions {
  auth?: RegistryCredentials | undefined;
  /** Use plain HTTP (always done for localhost, 127.0.0.0/8 and ::1, as Docker does). */
  insecure?: boolean | undefined;
  signal?: AbortSignal | undefined;
}

/** A parsed `WWW-Authenticate` challenge. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

const MAX_SMALL_BODY = 4 << 20;

/**
 * Parses a `WWW-Authenticate` header: `Bearer realm="…",service="…",scope="…"` or
 * `Basic realm="…"`. Several challenges in one header are not split (registries send one).
 * @returns undefined for an empty or unparseable header.
 */
export function parseAuthChallenge(header: string | null): AuthChallenge | undefined {
  if (!header) return undefined;
  const m = /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))\s*,?\s*/gy;
  const rest = m[2]!;
  let p: RegExpExecArray | null;
  while ((p = re.exec(rest)) !== null && p[0] !== '') {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3]!;
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

/** True for hosts Docker talks plain HTTP to by default: localhost, 127.0.0.0/8, ::1 (any port). */
export function isLoopbackRegistry(host: string): boolean {
  const name = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d+$/, '');
  return name === 'localhost' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}

/** The API endpoint of a registry domain: docker.io is served by registry-1.docker.io. */
export function registryBaseURL(domain: string, insecure = false): string {
  const host = domain === 'docker.io' ? 'registry-1.docker.io' : domain;
  return `${insecure || isLoopbackRegistry(host) ? 'http' : 'https'}://${host}`;
}

/** A request body that can be sent more than once: a fresh stream per call. */
export interface RequestBody {
  open(): Readable;
  size: number;
  contentType: string;
}

interface RegistryRequest {
  headers?: Record<string, string>;
  body?: RequestBody | Buffer;
  /** Statuses that count as success (others throw). */
  ok: readonly number[];
  /** What is being done, for error messages: "pushing blob sha256:…". */
  what: string;
  /**
   * Missing credentials are reported as dockerd's push does, a bare 'no basic auth credentials'
   * (its pull says `Head "URL": no basic auth credentials`, the default).
   */
  bareAuthError?: boolean;
}

/**
 * A client bound to one registry and one repository scope. Resolves authentication once (a
 * `GET /v2/` ping, as Docker does) and retries a request once when the registry answers 401.
 */
export class RegistryClient {
  readonly baseURL: string;
  readonly #opts: RegistryClientOptions;
  readonly #scope: string | undefined;
  readonly #domain: string;
  #authorization: string | undefined;
  #pinged = false;

  /**
   * @param domain registry host (and port) as in a reference: `localhost:5000`, `docker.io`.
   * @param scope token scope to ask for, e.g. `repository:library/hello:pull,push`; undefined for
   * a login check.
   */
  constructor(domain: string, scope: string | undefined, opts: RegistryClientOptions = {}) {
    this.#domain = domain;
    this.baseURL = registryBaseURL(domain, opts.insecure ?? false);
    this.#scope = scope;
    this.#opts = opts;
  }

  /**
   * `GET /v2/`, then whatever authentication the registry asks for. Checks credentials (login).
   * @throws RegistryError (status 401 with a login hint when the credentials are missing or wrong)
   */
  async ping(): Promise<void> {
    this.#pinged = true;
    const res = await this.#send('GET', '/v2/', {});
    if (res.status === 401) {
      await drain(res);
      // as dockerd, whose ping only learns the challenge: without credentials for a Basic one, the
      // first request that needs them fails (a push has listed its layers by then)
      const challenge = parseAuthChallenge(res.headers.get('www-authenticate'));
      if (!this.#opts.auth && this.#scope !== undefined && (challenge === undefined || challenge.scheme === 'basic')) return;
      await this.#authorize(res);
      const again = await this.#send('GET', '/v2/', {});
      // dockerd: "login attempt to http://h/v2/ failed with status: 401 Unauthorized"
      if (again.status === 401) throw await this.#unauthorized(again, `login attempt to ${this.baseURL}/v2/ failed with status: 401 Unauthorized`, true);
      if (!again.ok) throw await responseError(again, `checking ${this.baseURL}/v2/`);
      await drain(again);
      return;
    }
    if (!res.ok) throw await responseError(res, `checking ${this.baseURL}/v2/`);
    await drain(res);
  }

  /**
   * Sends a request to `path` (absolute path or a URL the registry gave, such as an upload
   * Location), authenticating as needed; returns the response (body not consumed) when its
   * status is one of `init.ok`.
   * @throws RegistryError for other statuses (with the registry's error list) and network errors.
   */
  async request(method: string, path: string, init: RegistryRequest): Promise<Response> {
    if (!this.#pinged) await this.ping();
    let res = await this.#send(method, path, init);
    if (res.status === 401) {
      await drain(res);
      await this.#authorize(res, init.bareAuthError ? undefined : `${method.charAt(0)}${method.slice(1).toLowerCase()} "${new URL(path, this.baseURL).href}"`);
      res = await this.#send(method, path, init);
      if (res.status === 401) throw await this.#unauthorized(res, init.what);
    }
    if (!init.ok.includes(res.status)) throw await responseError(res, init.what);
    return res;
  }

  async #send(method: string, path: string, init: Partial<RegistryRequest>): Promise<Response> {
    const url = new URL(path, this.baseURL);
    const headers: Record<string, string> = { 'User-Agent': 'tsbuild', ...init.headers };
    // Send credentials only to the registry itself, not to wherever a Location points.
    if (this.#authorization !== undefined && url.origin === new URL(this.baseURL).origin) headers.Authorization = this.#authorization;
    let body: Buffer | ReadableStream<Uint8Array> | undefined;
    if (Buffer.isBuffer(init.body)) {
      body = init.body;
    } else if (init.body !== undefined) {
      headers['Content-Type'] = init.body.contentType;
      headers['Content-Length'] = String(init.body.size);
      body = Readable.toWeb(init.body.open()) as ReadableStream<Uint8Array>;
    }
    try {
      return await fetch(url, {
        method,
        headers,
        ...(body !== undefined ? { body, duplex: 'half' } : {}),
        redirect: 'follow',
        ...(this.#opts.signal ? { signal: this.#opts.signal } : {}),
      } as globalThis.RequestInit);
    } catch (err) {
      if (this.#opts.signal?.aborted) throw err;
      // in Go's words, as dockerd prints them: 'Get "http://h/v2/": dial tcp h: connect: connection
      // refused' (url.Error: the method as Get/Head/Post/Put); what we were doing goes to the hint
      const op = method.charAt(0) + method.slice(1).toLowerCase();
      const doing = `${init.what ?? 'contacting the registry'} at ${url.origin} failed`;
      throw new RegistryError(`${op} "${url.href}": ${networkReason(err, url)}`, {
        cause: err,
        hint: isLoopbackRegistry(url.host) || url.protocol === 'http:' ? `${doing}: is the registry running at that address?` : `${doing}: check the registry name and the network (HTTPS is used for non-local registries)`,
      });
    }
  }

  /**
   * Chooses credentials for the challenge of a 401 response (Basic, or a Bearer token).
   * @param request the failed request as Go's url.Error names it (`Get "URL"`), for the error
   * without credentials; undefined for the bare message.
   */
  async #authorize(res: Response, request?: string): Promise<void> {
    const challenge = parseAuthChallenge(res.headers.get('www-authenticate'));
    const auth = this.#opts.auth;
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      this.#authorization = `Bearer ${await this.#fetchToken(challenge)}`;
      return;
    }
    if (challenge?.scheme === 'basic' || challenge === undefined) {
      // dockerd's words when it has nothing to answer a Basic challenge with
      if (!auth) throw await this.#unauthorized(res, `${request !== undefined ? `${request}: ` : ''}no basic auth credentials`, true);
      this.#authorization = basicAuthorization(auth);
      return;
    }
    throw new RegistryError(`registry ${this.#domain} asks for unsupported authentication "${challenge.scheme}"`, { status: 401 });
  }

  /** The token flow: GET realm?service=…&scope=… (Basic credentials if we have them) → token. */
  async #fetchToken(challenge: AuthChallenge): Promise<string> {
    let url: URL;
    try {
      url = new URL(challenge.params.realm!);
    } catch (err) {
      throw new RegistryError(`registry ${this.#domain} gave an invalid token realm "${challenge.params.realm}"`, { status: 401, cause: err });
    }
    if (challenge.params.service) url.searchParams.set('service', challenge.params.service);
    // The registry's scope names what the failed request needed; ours adds what the operation needs.
    const scopes = new Set([challenge.params.scope, this.#scope].filter((s): s is string => s !== undefined && s !== ''));
    for (const s of scopes) url.searchParams.append('scope', s);
    const headers: Record<string, string> = { 'User-Agent': 'tsbuild' };
    if (this.#opts.auth) headers.Authorization = basicAuthorization(this.#opts.auth);
    let res: Response;
    try {
      res = await fetch(url, { headers, ...(this.#opts.signal ? { signal: this.#opts.signal } : {}) });
    } catch (err) {
      if (this.#opts.signal?.aborted) throw err;
      throw new RegistryError(`getting a token from ${url.origin}`, { cause: err, hint: 'the registry sends clients to this token server; check the network' });
    }
    if (res.status === 401 || res.status === 403) throw await this.#unauthorized(res, `getting a token from ${url.origin}`);
    if (!res.ok) throw await responseError(res, `getting a token from ${url.origin}`);
    const body = parseJSON(await readSmallBody(res, 1 << 20, 'token response'), 'token response') as { token?: unknown; access_token?: unknown };
    const token = typeof body.token === 'string' && body.token !== '' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') throw new RegistryError(`the token server ${url.origin} returned no token`, { status: res.status });
    return token;
  }

  async #unauthorized(res: Response, what: string, whole = false): Promise<RegistryError> {
    const errors = await errorList(res);
    const detail = errors.length > 0 ? errors.map((e) => `${e.code.toLowerCase()}: ${e.message}`).join('; ') : 'authentication required';
    const login = this.#domain === 'docker.io' ? 'tsbuild login' : `tsbuild login ${this.#domain}`;
    const message = whole ? what : detail.startsWith('unauthorized:') ? `${what}: ${detail}` : `${what}: unauthorized: ${detail}`;
    return new RegistryError(message, {
      status: res.status,
      errors,
      hint: this.#opts.auth ? `the registry refused the credentials; check them with '${login}'` : `log in first: '${login}'`,
    });
  }
}

/**
 * Why a request never got an answer, in the words of Go's net package as dockerd prints them
 * (`dial tcp 127.0.0.1:1: connect: connection refused`, `dial tcp: lookup h: no such host`).
 */
export function networkReason(err: unknown, url: URL): string {
  let e: unknown = err;
  // fetch wraps the socket error: TypeError('fetch failed', { cause: Error { code } })
  while (e instanceof Error && (e as NodeJS.ErrnoException).code === undefined && e.cause !== undefined) e = e.cause;
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const port = url.port || (url.protocol === 'https:' ? '443' : '80');
  const host = `${url.hostname}:${port}`;
  switch (code) {
    case 'ECONNREFUSED':
      return `dial tcp ${host}: connect: connection refused`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `dial tcp: lookup ${url.hostname}: no such host`;
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `dial tcp ${host}: i/o timeout`;
    case 'ECONNRESET':
      return 'connection reset by peer';
    case 'UND_ERR_SOCKET':
      // the body ended before its Content-Length: Go's io.ErrUnexpectedEOF
      return (e as Error).message === 'other side closed' ? 'unexpected EOF' : (e as Error).message;
    case 'EHOSTUNREACH':
      return `dial tcp ${host}: connect: no route to host`;
    default:
      return e instanceof Error ? e.message : String(e);
  }
}

function basicAuthorization(auth: RegistryCredentials): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

/** Reads a small (JSON) body into memory, refusing more than `limit` bytes. */
export async function readSmallBody(res: Response, limit: number = MAX_SMALL_BODY, what = 'response'): Promise<Buffer> {
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (declared > limit) {
    await res.body?.cancel();
    throw new RegistryError(`${what} is too large (${declared} bytes, limit ${limit})`, { status: res.status });
  }
  const chunks: Buffer[] = [];
  let size = 0;
  if (res.body) {
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > limit) throw new RegistryError(`${what} is too large (over ${limit} bytes)`, { status: res.status });
      chunks.push(Buffer.from(chunk));
    }
  }
  return Buffer.concat(chunks);
}

/** Parses JSON from the network. @throws RegistryError */
export function parseJSON(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new RegistryError(`${what} is not valid JSON`, { cause: err });
  }
}

async function drain(res: Response): Promise<void> {
  await res.body?.cancel().catch(() => undefined);
}

async function errorList(res: Response): Promise<RegistryErrorDetail[]> {
  let bytes: Buffer;
  try {
    bytes = await readSmallBody(res, 64 << 10);
  } catch {
    return [];
  }
  try {
    const body = JSON.parse(bytes.toString('utf8')) as { errors?: unknown };
    if (!Array.isArray(body.errors)) return [];
    return body.errors
      .filter((e): e is { code?: unknown; message?: unknown } => typeof e === 'object' && e !== null)
      .map((e) => ({ code: String(e.code ?? 'UNKNOWN'), message: String(e.message ?? '') }));
  } catch {
    return [];
  }
}

/** A RegistryError for an unexpected status, carrying the registry's error list. */
export async function responseError(res: Response, what: string): Promise<RegistryError> {
  const errors = await errorList(res);
  const detail = errors.length > 0 ? errors.map((e) => `${e.code.toLowerCase().replace(/_/g, ' ')}: ${e.message}`).join('; ') : `${res.status} ${res.statusText}`.trim();
  return new RegistryError(`${what}: ${detail}`, { status: res.status, errors });
}
