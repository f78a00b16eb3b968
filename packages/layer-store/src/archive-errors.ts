/** Errors of reading and writing image archives (save/load/import/export). */
import { StoreError, type ErrorOptions } from './errors.js';

/**
 * An image archive (or rootfs tarball) that cannot be read: malformed, truncated, hostile, or
 * missing a member. `member` names the archive member at fault when there is one.
 * Codes: E_ARCHIVE (malformed), E_ARCHIVE_UNSAFE_PATH, E_ARCHIVE_TRUNCATED, E_ARCHIVE_TOO_LARGE,
 * E_ARCHIVE_MISSING_MEMBER, E_ARCHIVE_BAD_JSON.
 */
export class ArchiveError extends StoreError {
  readonly member: string | undefined;
  constructor(code: string, message: string, options: ErrorOptions & { member?: string } = {}) {
    super(options.member !== undefined ? `${message} (archive member "${options.member}")` : message, {
      code,
      hint: options.hint ?? 'the archive is damaged or was not made by docker save / tsbuild save / skopeo; nothing was loaded',
      cause: options.cause,
    });
    this.member = options.member;
  }
}
