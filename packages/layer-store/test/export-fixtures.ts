/** What the export tests share: export's definition (unpack-and-walk), export's output, and hand-made layer tars. */
import type { ExecutionContext } from 'ava';
import { chmod } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { applyLayer, exportImage, layerTarStream, type Store } from '../src/index.js';
import { encodeHeader, padding, trailer, type TarHeader } from '../src/tar.js';
import { collector, tempDir } from './archive-fixtures.js';

/** An entry of `rawTar`: a header (file, 0644, 0:0, mtime 1e9 unless given) and its content. */
export type RawEntry = Partial<TarHeader> & { name: string; content?: string };

/** The definition of export: every layer applied (plain) onto one dir, that dir tarred by the walk. */
export async function unpackAndWalk(t: ExecutionContext, store: Store, ref: string): Promise<Buffer> {
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  const image = await store.resolveImage(ref);
  for (const l of image.manifest.layers) await applyLayer(store.openBlob(l.digest), dir, { format: 'plain' });
  const out = collector();
  await pipeline(layerTarStream(dir, { kind: 'rootfs' }), out);
  return out.bytes();
}

/** What `exportImage` writes for `ref`. */
export async function exported(store: Store, ref: string): Promise<Buffer> {
  const out = collector();
  await exportImage(store, ref, out);
  return out.bytes();
}

/** A tar of exactly these entries, in this order, encoded by our own tar encoder (xattrs as PAX). */
export function rawTar(entries: RawEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const { content, ...e } of entries) {
    const body = Buffer.from(content ?? '');
    parts.push(encodeHeader({ type: 'file', mode: 0o644, uid: 0, gid: 0, mtime: 1_000_000_000, ...e, size: body.length }), body, padding(body.length));
  }
  return Buffer.concat([...parts, trailer()]);
}
