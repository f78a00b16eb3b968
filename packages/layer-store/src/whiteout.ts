/**
 * OCI whiteouts ↔ overlayfs whiteouts.
 * https://github.com/opencontainers/image-spec/blob/main/layer.md#whiteouts
 * In a layer tar a deleted path `a/b` is an empty regular file `a/.wh.b`; an opaque directory
 * (hides everything below it in lower layers) is the directory plus `dir/.wh..wh..opq`.
 * In an overlay upper dir a deleted path is a 0/0 character device, an opaque directory has the
 * xattr `trusted.overlay.opaque` = `y`.
 */
import type { TarHeader } from './tar.js';

export const WHITEOUT_PREFIX = '.wh.';
export const OPAQUE_WHITEOUT = '.wh..wh..opq';
export const OVERLAY_OPAQUE_XATTR = 'trusted.overlay.opaque';
/** Kernels ≥ 6.7 may mark a whiteout as an empty regular file with this xattr (nested overlays). */
export const OVERLAY_WHITEOUT_XATTR = 'trusted.overlay.whiteout';
const OVERLAY_XATTR_PREFIX = 'trusted.overlay.';

function joinPath(dir: string, base: string): string {
  return dir === '' ? base : `${dir}/${base}`;
}

function splitPath(p: string): [string, string] {
  const i = p.lastIndexOf('/');
  return i < 0 ? ['', p] : [p.slice(0, i), p.slice(i + 1)];
}

/** True for an overlay whiteout: a character device 0/0, or an empty file with the whiteout xattr. */
export function isOverlayWhiteout(h: Pick<TarHeader, 'type' | 'devmajor' | 'devminor' | 'size' | 'xattrs'>): boolean {
  if (h.type === 'file') return h.size === 0 && h.xattrs?.has(OVERLAY_WHITEOUT_XATTR) === true;
  return h.type === 'char' && (h.devmajor ?? 0) === 0 && (h.devminor ?? 0) === 0;
}

/**
 * Converts one entry read from an overlay upper dir into the tar entries of an OCI layer
 * (Docker's overlay whiteout converter does the same):
 * 0/0 char device (or empty file with `trusted.overlay.whiteout`) → empty regular file
 * `.wh.<name>` (mode 0600, same owner and mtime);
 * directory with `trusted.overlay.opaque=y` → the directory (without overlay xattrs) followed by
 * `<dir>/.wh..wh..opq`; anything else → itself, minus `trusted.overlay.*` xattrs.
 */
export function upperToLayerEntries(h: TarHeader): TarHeader[] {
  const xattrs = h.xattrs ? new Map([...h.xattrs].filter(([k]) => !k.startsWith(OVERLAY_XATTR_PREFIX))) : undefined;
  const clean: TarHeader = { ...h, ...(xattrs ? { xattrs } : {}) };
  if (isOverlayWhiteout(h)) {
    const [dir, base] = splitPath(h.name);
    return [{ name: joinPath(dir, WHITEOUT_PREFIX + base), type: 'file', mode: 0o600, uid: h.uid, gid: h.gid, size: 0, mtime: h.mtime }];
  }
  if (h.type === 'directory' && h.xattrs?.get(OVERLAY_OPAQUE_XATTR)?.toString() === 'y') {
    return [clean, { name: joinPath(h.name, OPAQUE_WHITEOUT), type: 'file', mode: h.mode & 0o777, uid: h.uid, gid: h.gid, size: 0, mtime: h.mtime }];
  }
  return [clean];
}

/** What a layer entry's name means for whiteouts. */
export type WhiteoutMeaning =
  | { kind: 'opaque'; dir: string }
  | { kind: 'whiteout'; target: string }
  | { kind: 'none' };

/**
 * Classifies a (normalised) layer entry name: `d/.wh..wh..opq` → opaque `d`; `d/.wh.x` →
 * whiteout of `d/x`; else none.
 */
export function whiteoutMeaning(name: string): WhiteoutMeaning {
  const [dir, base] = splitPath(name);
  if (base === OPAQUE_WHITEOUT) return { kind: 'opaque', dir };
  if (base.startsWith(WHITEOUT_PREFIX)) return { kind: 'whiteout', target: joinPath(dir, base.slice(WHITEOUT_PREFIX.length)) };
  return { kind: 'none' };
}
