import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { listAttributes, getAttribute } from 'fs-xattr';
import tar from 'tar-stream';

/** A fresh temp dir removed at teardown. */
export async function tempDir(t: ExecutionContext, prefix = 'ls-test'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `${prefix}-`));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A listing of a tree for comparisons: one line per path with type, mode, owner, size, mtime,
 * content hash, link target, device numbers, xattrs, and hard-link group.
 */
export async function describeTree(root: string, { mtimes = true, skipXattrs = [] as string[] } = {}): Promise<string[]> {
  const lines: string[] = [];
  const inodes = new Map<string, string>();
  async function visit(rel: string): Promise<void> {
    const names = (await readdir(join(root, rel))).sort();
    for (const n of names) {
      const r = rel ? `${rel}/${n}` : n;
      const p = join(root, r);
      const st = await lstat(p, { bigint: true });
      const type = st.isDirectory() ? 'd' : st.isSymbolicLink() ? 'l' : st.isFile() ? 'f' : st.isCharacterDevice() ? 'c' : st.isBlockDevice() ? 'b' : st.isFIFO() ? 'p' : '?';
      let extra = '';
      if (type === 'f') extra = createHash('sha256').update(await readFile(p)).digest('hex').slice(0, 12);
      if (type === 'l') extra = `-> ${await readlink(p)}`;
      if (type === 'c' || type === 'b') extra = `rdev=${st.rdev}`;
      let x = '';
      if (type !== 'l') {
        const names = (await listAttributes(p)).filter((a) => !skipXattrs.includes(a)).sort();
        for (const a of names) x += ` ${a}=${(await getAttribute(p, a)).toString('hex')}`;
      }
      let hl = '';
      if (type !== 'd' && st.nlink > 1n) {
        const key = `${st.ino}`;
        if (!inodes.has(key)) inodes.set(key, r);
        hl = ` link=${inodes.get(key)}`;
      }
      const mode = (Number(st.mode) & 0o7777).toString(8);
      lines.push(`${r} ${type} ${mode} ${st.uid}:${st.gid} ${type === 'f' ? st.size : ''} ${mtimes && type !== 'l' ? Number(st.mtimeMs / 1000n) : ''} ${extra}${x}${hl}`);
      if (type === 'd') await visit(r);
    }
  }
  await visit('');
  return lines;
}

/** Runs a command, returns stdout; throws with stderr on failure. */
export async function sh(cmd: string, args: string[], opts: { input?: Buffer; cwd?: string } = {}): Promise<string> {
  const { spawn } = await import('node:child_process');
  return new Promise((resolve, reject) => {
    const c = spawn(cmd, args, { stdio: [opts.input ? 'pipe' : 'ignore', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    let out = '';
    let err = '';
    c.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    c.stderr!.setEncoding('utf8').on('data', (s: string) => (err += s));
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${err}`))));
    if (opts.input && c.stdin) {
      c.stdin.on('error', () => undefined);
      c.stdin.end(opts.input);
    }
  });
}

/** One entry of a tar made by {@link tarOf}. */
export type Entry = Partial<tar.Header> & { name: string; content?: string };

/** A tar built with tar-stream (an independent writer), entries as given. */
export async function tarOf(entries: Entry[]): Promise<Buffer> {
  const pack = tar.pack();
  const collected = (async () => {
    const chunks: Buffer[] = [];
    for await (const c of pack) chunks.push(c as Buffer);
    return Buffer.concat(chunks);
  })();
  for (const { content, ...h } of entries) pack.entry({ mtime: new Date(0), ...h }, content ?? '');
  pack.finalize();
  return collected;
}
