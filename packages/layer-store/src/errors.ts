/**
 * Error classes of the store. Every one has a stable `code` ('E_…'), a message naming what was
 * being done, an optional `hint` telling the user what to do, and the underlying `cause`.
 */

export interface ErrorOptions {
  hint?: string;
  cause?: unknown;
}

/** Base class of every error the store throws. */
export class StoreError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  constructor(message: string, options: ErrorOptions & { code?: string } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? 'E_STORE';
    this.hint = options.hint;
  }
}

/** An image reference, ID or digest that names nothing in the store. */
export class ImageNotFoundError extends StoreError {
  /** @param options.cause a ReferenceError when `ref` is no valid reference: its reason and hint are shown. */
  constructor(readonly ref: string, options: ErrorOptions = {}) {
    const bad = options.cause as { reason?: unknown; hint?: unknown } | undefined;
    const reason = typeof bad?.reason === 'string' ? bad.reason : undefined;
    super(reason === undefined ? `image not found: ${ref}` : `image not found: ${ref}: ${reason}`, {
      code: 'E_IMAGE_NOT_FOUND',
      hint: reason !== undefined && typeof bad?.hint === 'string' ? bad.hint : "'tsbuild images' lists the images in the store",
      ...options,
    });
  }
}

/** An ID prefix that matches several images. */
export class AmbiguousImageError extends StoreError {
  constructor(readonly ref: string, readonly matches: string[]) {
    super(`image ID prefix ${ref} is ambiguous: it matches ${matches.length} images`, {
      code: 'E_IMAGE_AMBIGUOUS',
      hint: 'give more characters of the image ID',
    });
  }
}

/** Bytes whose sha256 (or size) is not the one they were promised to have. */
export class DigestMismatchError extends StoreError {
  readonly expected: string;
  readonly actual: string;
  constructor(info: { expected: string; actual: string; path?: string; what?: string }, options: ErrorOptions = {}) {
    super(
      `digest mismatch${info.what ? ` for ${info.what}` : ''}${info.path ? ` (${info.path})` : ''}: expected ${info.expected}, got ${info.actual}`,
      { code: 'E_DIGEST_MISMATCH', hint: 'the data is corrupt or was changed; fetch or build it again', ...options },
    );
    this.expected = info.expected;
    this.actual = info.actual;
  }
}

/** A malformed digest string. */
export class InvalidDigestError extends StoreError {
  constructor(readonly value: string) {
    super(`invalid digest "${value}"`, { code: 'E_DIGEST', hint: 'a digest is "sha256:" followed by 64 lowercase hex digits' });
  }
}

/** A tar entry (or other path) that would escape its target directory. */
export class UnsafePathError extends StoreError {
  constructor(readonly entry: string, reason: string, options: ErrorOptions = {}) {
    super(`unsafe path in layer: "${entry}" ${reason}`, {
      code: 'E_UNSAFE_PATH',
      hint: 'the layer is malformed or hostile; it was not applied',
      ...options,
    });
  }
}

/** A layer whose tar or compression is broken (truncated, bad gzip, too large). */
export class CorruptLayerError extends StoreError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { code: 'E_CORRUPT_LAYER', hint: 'the layer blob is damaged; fetch or build it again', ...options });
  }
}

/** A blob the store does not have. */
export class BlobNotFoundError extends StoreError {
  constructor(readonly digest: string, options: ErrorOptions = {}) {
    super(`blob not found: ${digest}`, { code: 'E_BLOB_NOT_FOUND', hint: "the store is incomplete; 'tsbuild pull' or rebuild the image", ...options });
  }
}

/** The store's lock could not be taken. */
export class LockError extends StoreError {
  constructor(message: string, options: ErrorOptions = {}) {
    super(message, { code: 'E_LOCK', ...options });
  }
}
