import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { addInto, selectSources } from '../src/context/index.js';

async function setup(t: ExecutionContext): Promise<{ ctx: string; rootfs: string; outside: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'add-hostile-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ctx = path.join(dir, 'ctx');
  const rootfs = path.join(dir, 'rootfs');
  const outside = path.join(dir, 'outside');
  await mkdir(ctx);
  await mkdir(path.join(rootfs, 'etc'), { recursive: true });
  await mkdir(outside);
  return { ctx, rootfs, outside };
}

/** A tar written by Python's tarfile (an independent writer that keeps hostile names as given). */
function pythonTar(file: string, entries: Array<{ name: string; type?: 'sym' | 'link'; target?: string; data?: string }>): void {
  const script = `
import io, json, sys, tarfile
with tarfile.open(sys.argv[1], 'w:gz') as t:
    for e in json.loads(sys.argv[2]):
        ti = tarfile.TarInfo(e['name'])
        if e.get('type') == 'sym': ti.type = tarfile.SYMTYPE; ti.linkname = e['target']
        elif e.get('type') == 'link': ti.type = tarfile.LNKTYPE; ti.linkname = e['target']
        data = e.get('data', '').encode()
        ti.size = len(data) if ti.type == tarfile.REGTYPE else 0
        t.addfile(ti, io.BytesIO(data))
`;
  execFileSync('python3', ['-c', script, file, JSON.stringify(entries)]);
}

test('ADD of an archive with "../" and absolute member names lands under the destination (as Docker 20.10), nothing outside', async (t) => {
  const { ctx, rootfs, outside } = await setup(t);
  pythonTar(path.join(ctx, 'evil.tar.gz'), [
    { name: `../../../../${outside.slice(1)}/dotdot`, data: 'a' },
    { name: `${outside}/abs`, data: 'b' },
    { name: 'up', type: 'sym', target: '..' },
    { name: 'up/up2', type: 'sym', target: '../..' },
    { name: 'up/up2/viaLinks', data: 'c' },
  ]);
  await addInto({ rootfs, sources: await selectSources(ctx, ['evil.tar.gz']), dest: '/t/' });
  t.is(await readFile(path.join(rootfs, 't', outside, 'dotdot'), 'utf8'), 'a');
  t.is(await readFile(path.join(rootfs, 't', outside, 'abs'), 'utf8'), 'b');
  t.is(await readFile(path.join(rootfs, 't/viaLinks'), 'utf8'), 'c');
  t.deepEqual(await readdir(outside), []);
});

for (const [name, entries, message] of [
  ['a symlink to a host directory, written through', [{ name: 'evil', type: 'sym', target: '/etc-host' }, { name: 'evil/passwd', data: 'x' }], /ADD failed: extracting evil\.tar\.gz into \/t: archive entry "evil\/passwd" goes through a symlink to "\/etc-host", which does not exist/],
  ['a hard link to /etc/shadow', [{ name: 'h', type: 'link', target: '/etc/shadow' }], /archive entry "h" refers to "etc", which does not exist/],
] as const) {
  test(`ADD of an archive with ${name}: refused as Docker refuses it, naming the entry, with a hint`, async (t) => {
    const { ctx, rootfs, outside } = await setup(t);
    pythonTar(path.join(ctx, 'evil.tar.gz'), [...entries]);
    const err = await t.throwsAsync(addInto({ rootfs, sources: await selectSources(ctx, ['evil.tar.gz']), dest: '/t/' }), { code: 'E_ADD_EXTRACT', message } as never);
    t.regex((err as unknown as { hint: string }).hint, /re-create evil\.tar\.gz/);
    t.deepEqual(await readdir(outside), []);
  });
}

test('ADD of a decompression bomb stops at maxArchiveBytes with an error saying so', async (t) => {
  const { ctx, rootfs } = await setup(t);
  const src = path.join(ctx, 'src');
  await mkdir(src);
  await writeFile(path.join(src, 'zeros'), Buffer.alloc(8 << 20));
  execFileSync('tar', ['-C', src, '-czf', path.join(ctx, 'bomb.tar.gz'), 'zeros']);
  const err = await t.throwsAsync(addInto({ rootfs, sources: await selectSources(ctx, ['bomb.tar.gz']), dest: '/t/', maxArchiveBytes: 1 << 20 }), {
    code: 'E_ADD_EXTRACT',
    message: /extracting bomb\.tar\.gz into \/t: archive too large/,
  } as never);
  t.regex((err as unknown as { hint: string }).hint, /more than 1048576 bytes .*decompression bomb/);
  // without the limit (default: the free disk space) the same archive extracts
  await addInto({ rootfs, sources: await selectSources(ctx, ['bomb.tar.gz']), dest: '/u/' });
  t.is((await readFile(path.join(rootfs, 'u/zeros'))).length, 8 << 20);
});

test('ADD of a truncated .tar.gz fails naming the archive (Docker: "unexpected EOF")', async (t) => {
  const { ctx, rootfs } = await setup(t);
  const src = path.join(ctx, 'src');
  await mkdir(src);
  // incompressible content, cut inside it
  await writeFile(path.join(src, 'random'), randomBytes(64 << 10));
  execFileSync('sh', ['-c', `tar -C '${src}' -cz . | head -c 20000 > '${path.join(ctx, 'cut.tar.gz')}'`]);
  await t.throwsAsync(addInto({ rootfs, sources: await selectSources(ctx, ['cut.tar.gz']), dest: '/t/' }), {
    code: 'E_ADD_EXTRACT',
    message: /extracting cut\.tar\.gz into \/t: archive (compression is corrupt or truncated|tar is truncated)/,
  } as never);
});
