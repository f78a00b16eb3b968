/**
 * `import URL`: the tarball `docker import http://…` downloads. Docker 20.10's CLI sends a source
 * that starts with `http://` or `https://` to the daemon as a URL (urlutil.IsURL), and the daemon
 * GETs it (remote.GetWithStatusError): redirects followed, a status of 400 or more is an error
 * naming the status and the body, and the image's comment is `Imported from URL`.
 */
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { StoreError } from './errors.js';
import { networkReason, readSmallBody } from './registry-client.js';
import type { Cancellable } from './types.js';

/** Largest error body quoted in a failed download's message. */
const MAX_ERROR_BODY = 64 * 1024;

/** Whether `source` is what the docker CLI's import takes as a URL (`http://` or `https://`). */
export function isImportURL(source: string): boolean {
  return source.startsWith('http://') || source.startsWith('https://');
}

/**
 * Starts downloading the tarball at `url`.
 * @returns the response body as a stream (the caller consumes or destroys it).
 * @throws StoreError E_INPUT in dockerd's words: `Get "URL": dial tcp …: connect: connection
 * refused` when no answer came, `failed to GET URL with status 404 Not Found: BODY` for an error
 * status.
 */
export async function openTarballURL(url: string, opts: Cancellable = {}): Promise<Readable> {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new StoreError(`parse ${JSON.stringify(url)}: invalid URL`, { code: 'E_INPUT', cause: err, hint: 'give import a file, - for stdin, or an http:// or https:// URL' });
  }
  let res: Response;
  try {
    res = await fetch(parsed, { redirect: 'follow', ...(opts.signal ? { signal: opts.signal } : {}) });
  } catch (err) {
    if (opts.signal?.aborted) throw err;
    throw new StoreError(`Get ${JSON.stringify(url)}: ${networkReason(err, parsed)}`, { code: 'E_INPUT', cause: err, hint: 'check the URL and that its server is reachable' });
  }
  if (res.status >= 400) {
    let body = '';
    try {
      body = (await readSmallBody(res, MAX_ERROR_BODY, 'error body')).toString('utf8').trim();
    } catch {
      body = '';
      await res.body?.cancel().catch(() => undefined);
    }
    const status = `${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    throw new StoreError(`failed to GET ${url} with status ${status}: ${body}`, { code: 'E_INPUT', hint: 'the server did not give the tarball; check the URL' });
  }
  if (res.body === null) return Readable.from([]);
  return Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
}
