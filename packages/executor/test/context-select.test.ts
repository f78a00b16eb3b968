import test, { type ExecutionContext } from 'ava';
import { mkdir, mkdtemp, readFile, rm, symlink, utimes, writeFile, chmod } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { compileIgnore, hashSourcesDetailed, selectSources, StatIndex, type Source } from '../src/context/index.js';

async function tempDir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), 'ctx-select-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

/** Writes files: a key ending in '/' is a directory, '->x' a symlink. */
async function tree(root: string, spec: Record<string, string>): Promise<void> {
  for (const [p, v] of Object.entries(spec)) {
    const full = path.join(root, p);
    if (p.endsWith('/')) await mkdir(full, { recursive: true });
    else {
      await mkdir(path.dirname(full), { recursive: true });
      if (v.startsWith('->')) await symlink(v.slice(2), full);
      else await writeFile(full, v);
    }
  }
}

const ctxSpec = {
  'a.txt': 'a',
  'b.txt': 'b',
  'c.md': 'c',
  'dir/f1': '1',
  'dir/sub/f2': '2',
  'dir/sub/skip.log': 'log',
  'other/x.txt': 'x',
  'we*ird': 'w',
  'link': '->a.txt',
  'abslink': '->/etc/passwd',
  'uplink': '->../../outside',
  'linkdir': '->dir',
  'dir/inner-link': '->/etc/shadow',
};

const names = (sources: Source[]): string[] => sources.map((s) => s.rel);
const entriesOf = (s: Source): string[] => s.entries.map((e) => `${e.rel}:${e.type}`);

// [patterns, expected source rels] or an error code
const selectTable: Array<[string[], string[] | string]> = [
  [['a.txt'], ['a.txt']],
  [['/a.txt'], ['a.txt']],
  [['./dir/../a.txt'], ['a.txt']],
  [['*.txt'], ['a.txt', 'b.txt']],
  [['?.md'], ['c.md']],
  [['[ab].txt'], ['a.txt', 'b.txt']],
  [['*/x.txt'], ['other/x.txt']],
  [['dir/s*'], ['dir/sub']],
  // A wildcard match is followed like a named source: a link pointing out fails (as Docker 20.10 does).
  [['dir/*'], 'E_SOURCE_NOT_FOUND'],
  [['we\\*ird'], 'E_SOURCE_NOT_FOUND'], // no wildcard: the name is taken literally, backslash included
  [['we[*]ird'], ['we*ird']],
  [['nomatch*'], 'E_NO_SOURCE_FILES'],
  [['missing'], 'E_SOURCE_NOT_FOUND'],
  [['../a.txt'], 'E_OUTSIDE_CONTEXT'],
  [['dir/../../a.txt'], 'E_OUTSIDE_CONTEXT'],
  [['abslink'], 'E_SOURCE_NOT_FOUND'], // resolved inside the context: <ctx>/etc/passwd
  [['uplink'], 'E_SOURCE_NOT_FOUND'],
  [['linkdir/*'], 'E_NO_SOURCE_FILES'], // wildcards do not walk through symlinks (Docker)
  [['x['], 'E_NO_SOURCE_FILES'], // Docker drops filepath.Match's ErrBadPattern: no match
  [['.'], ['.']],
];

for (const [patterns, want] of selectTable) {
  test(`selectSources ${JSON.stringify(patterns)} → ${JSON.stringify(want)}`, async (t) => {
    const root = await tempDir(t);
    await tree(root, ctxSpec);
    const p = selectSources(root, patterns);
    if (typeof want === 'string') await t.throwsAsync(p, { code: want } as never);
    else t.deepEqual(names(await p), want);
  });
}

test('selectSources: Docker error messages', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  await t.throwsAsync(selectSources(root, ['missing']), {
    message: 'COPY failed: file not found in build context or excluded by .dockerignore: stat missing: file does not exist',
  });
  await t.throwsAsync(selectSources(root, ['nomatch*']), { message: 'COPY failed: no source files were specified' });
  await t.throwsAsync(selectSources(root, ['../a.txt']), { message: 'COPY failed: forbidden path outside the build context: ../a.txt ()' });
});

// dockerd 20.10 starts them with the instruction: "ADD failed: …" (checked, oracle5/e-add-*)
test('selectSources: ADD errors say ADD failed', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  const add = { instruction: 'ADD' } as const;
  await t.throwsAsync(selectSources(root, ['missing'], add), {
    message: 'ADD failed: file not found in build context or excluded by .dockerignore: stat missing: file does not exist',
  });
  await t.throwsAsync(selectSources(root, ['b.txt'], { ...add, ignore: compileIgnore(['b.txt']) }), { message: /^ADD failed: file not found in build context/ });
  await t.throwsAsync(selectSources(root, ['nomatch*'], add), { message: 'ADD failed: no source files were specified' });
  await t.throwsAsync(selectSources(root, ['[a'], add), { message: 'ADD failed: no source files were specified' });
  await t.throwsAsync(selectSources(root, ['../a.txt'], add), { message: 'ADD failed: forbidden path outside the build context: ../a.txt ()' });
});

test('selectSources: a symlink named as source is followed inside the context; symlinks below a directory are kept', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  const [link] = await selectSources(root, ['link']);
  t.is(link!.entries[0]!.type, 'file');
  t.is(link!.entries[0]!.hostPath, path.join(root, 'a.txt'));
  const [ld] = await selectSources(root, ['linkdir']);
  t.deepEqual(entriesOf(ld!), [':dir', 'f1:file', 'inner-link:symlink', 'sub:dir', 'sub/f2:file', 'sub/skip.log:file']);
  t.is(ld!.entries.find((e) => e.rel === 'inner-link')!.linkTarget, '/etc/shadow');
});

test('selectSources: .dockerignore excludes files, directories and the named source itself', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  const ignore = compileIgnore(['**/*.log', 'other', 'b.txt']);
  const [dir] = await selectSources(root, ['dir'], { ignore });
  t.false(entriesOf(dir!).includes('sub/skip.log:file'));
  await t.throwsAsync(selectSources(root, ['b.txt'], { ignore }), { code: 'E_SOURCE_NOT_FOUND' } as never);
  t.deepEqual(names(await selectSources(root, ['*.txt'], { ignore })), ['a.txt']);
  const [all] = await selectSources(root, ['.'], { ignore });
  t.false(all!.entries.some((e) => e.rel.startsWith('other')));
});

test('selectSources: an exception re-includes a file inside an ignored directory', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  const ignore = compileIgnore(['dir', '!dir/sub/f2']);
  const [all] = await selectSources(root, ['.'], { ignore });
  const rels = all!.entries.map((e) => e.rel);
  t.true(rels.includes('dir/sub/f2'));
  t.false(rels.includes('dir/f1'));
  t.false(rels.includes('dir'));
});

test('selectSources: from another root (a stage rootfs), absolute paths and symlinks stay inside it', async (t) => {
  const root = await tempDir(t);
  await tree(root, { 'usr/lib/libx.so': 'x', 'lib': '->/usr/lib', 'etc/passwd': 'root' });
  const [s] = await selectSources(root, ['/lib/libx.so']);
  t.is(s!.entries[0]!.hostPath, path.join(root, 'usr/lib/libx.so'));
  t.deepEqual(names(await selectSources(root, ['/usr/lib/*.so'])), ['usr/lib/libx.so']);
});

test('selectSources: allowEmptyWildcard', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  t.deepEqual(await selectSources(root, ['none*'], { allowEmptyWildcard: true }), []);
});

test('hashSources: content and mode change the digest; touch and ignored files do not', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  const ignore = compileIgnore(['dir/sub/skip.log']);
  const digest = async (): Promise<string> => (await hashSourcesDetailed(await selectSources(root, ['.'], { ignore }))).digest;
  const d0 = await digest();
  t.regex(d0, /^sha256:[0-9a-f]{64}$/);
  t.is(await digest(), d0);
  await utimes(path.join(root, 'dir/f1'), new Date(1e12), new Date(1e12));
  t.is(await digest(), d0, 'touch does not change the digest');
  await writeFile(path.join(root, 'dir/sub/skip.log'), 'changed');
  t.is(await digest(), d0, 'an ignored file does not count');
  await writeFile(path.join(root, 'dir/f1'), '!');
  const d1 = await digest();
  t.not(d1, d0, 'content changes the digest');
  await chmod(path.join(root, 'dir/f1'), 0o600);
  t.not(await digest(), d1, 'mode changes the digest');
});

test('hashSources: a renamed file changes the digest', async (t) => {
  const root = await tempDir(t);
  await tree(root, { 'd/a': 'same' });
  const d0 = (await hashSourcesDetailed(await selectSources(root, ['d']))).digest;
  await rm(path.join(root, 'd/a'));
  await writeFile(path.join(root, 'd/b'), 'same');
  t.not((await hashSourcesDetailed(await selectSources(root, ['d']))).digest, d0);
});

test('hashSources: a warm stat index skips reading unchanged files, and notices a change', async (t) => {
  const root = await tempDir(t);
  const files: Record<string, string> = {};
  for (let i = 0; i < 50; i++) files[`d/f${i}`] = `content ${i}`;
  await tree(root, files);
  // Make the files older than the index, so they are not "racy" (git's rule).
  for (let i = 0; i < 50; i++) await utimes(path.join(root, `d/f${i}`), 1000, 1000);
  const indexFile = path.join(root, 'stat-index.json');
  const cold = await hashSourcesDetailed(await selectSources(root, ['d']), { statIndex: indexFile });
  t.is(cold.filesRead, 50);
  t.true((await readFile(indexFile, 'utf8')).startsWith('tsbuild-stat-index v2\n'));
  const warm = await hashSourcesDetailed(await selectSources(root, ['d']), { statIndex: indexFile });
  t.is(warm.filesRead, 0);
  t.is(warm.filesCached, 50);
  t.is(warm.digest, cold.digest);
  await writeFile(path.join(root, 'd/f7'), 'new content');
  const after = await hashSourcesDetailed(await selectSources(root, ['d']), { statIndex: indexFile });
  t.is(after.filesRead, 1);
  t.not(after.digest, cold.digest);
});

test('stat index: paths with tabs, newlines and backslashes round-trip', async (t) => {
  const root = await tempDir(t);
  const name = 'we\tird\nna\\me';
  await tree(root, { [`d/${name}`]: 'x', 'd/plain': 'y' });
  await utimes(path.join(root, 'd', name), 1000, 1000);
  await utimes(path.join(root, 'd/plain'), 1000, 1000);
  const indexFile = path.join(root, 'idx');
  const cold = await hashSourcesDetailed(await selectSources(root, ['d']), { statIndex: indexFile });
  const warm = await hashSourcesDetailed(await selectSources(root, ['d']), { statIndex: indexFile });
  t.is(cold.filesRead, 2);
  t.is(warm.filesCached, 2);
  t.is(warm.digest, cold.digest);
});

test('stat index: tarsums are kept beside content digests, and a v1 index file is read as empty', async (t) => {
  const root = await tempDir(t);
  await tree(root, { 'd/a': 'a', 'd/b': 'b' });
  for (const f of ['d/a', 'd/b']) await utimes(path.join(root, f), 1000, 1000);
  const indexFile = path.join(root, 'idx');
  await writeFile(indexFile, 'tsbuild-stat-index v1\n1:2:3:4:5\tdeadbeef\t/x\n');
  const sources = await selectSources(root, ['d']);
  const first = await hashSourcesDetailed(sources, { statIndex: indexFile });
  t.is(first.filesRead, 2, 'the v1 file held nothing usable');
  const index = await StatIndex.load(indexFile);
  const a = sources[0]!.entries.find((e) => e.rel === 'a')!;
  t.is(index.lookupTarsum(a), undefined);
  index.recordTarsum(a, 'ab'.repeat(32));
  await index.save();
  const again = await StatIndex.load(indexFile);
  t.is(again.lookupTarsum(a), 'ab'.repeat(32));
  t.is(again.lookup(a), index.lookup(a), 'the content digest survives beside it');
  t.truthy(again.lookup(a));
});

test('selectSources: a name that is not valid UTF-8 fails naming it (not a bare ENOENT); ignored, it is no problem', async (t) => {
  const { writeFileSync, mkdirSync } = await import('node:fs');
  const root = await tempDir(t);
  mkdirSync(path.join(root, 'd'));
  writeFileSync(Buffer.concat([Buffer.from(`${root}/d/bad`), Buffer.from([0xff]), Buffer.from('name')]), 'x');
  await t.throwsAsync(selectSources(root, ['d']), { code: 'E_NAME_ENCODING', message: 'file name is not valid UTF-8: d/bad\ufffdname' } as never);
  const [d] = await selectSources(root, ['d'], { ignore: compileIgnore(['d/bad*']) });
  t.deepEqual(entriesOf(d!), [':dir']);
});

test('readDockerignore: a .dockerignore that cannot be read fails in the docker CLI\'s words', async (t) => {
  const { readDockerignore } = await import('../src/context/index.js');
  const root = await tempDir(t);
  await mkdir(path.join(root, '.dockerignore'));
  await t.throwsAsync(readDockerignore(root), { code: 'E_DOCKERIGNORE_READ', message: `Error reading .dockerignore: read ${root}/.dockerignore: is a directory` } as never);
});

// Checked against dockerd 20.10 (h2/w1..w12): copyWithWildcards matches the source after trimming
// one leading "/" and one "./" against the walk's clean paths, before any outside-context check.
test('selectSources: wildcard patterns that are not clean match nothing, as Docker', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  const rels = async (p: string): Promise<string[]> => (await selectSources(root, [p], { allowEmptyWildcard: true })).map((s) => s.rel);
  const rows: Array<[string, string[]]> = [
    ['d*', ['dir']],
    ['./d*', ['dir']],
    ['/d*', ['dir']],
    ['dir/s*', ['dir/sub']],
    ['/./dir/f?', ['dir/f1']],
    ['d*/', []],
    ['./dir/../d*', []],
    ['././d*', []],
    ['//d*', []],
    ['dir//*', []],
    ['dir/./f*', []],
    ['other/../dir/*', []],
    ['../d*', []],
    ['d*/..', []],
  ];
  for (const [pattern, want] of rows) t.deepEqual(await rels(pattern), want, pattern);
  await t.throwsAsync(selectSources(root, ['d*/']), { message: 'COPY failed: no source files were specified' });
  // the outside-context message names the path as Docker's copier holds it
  await t.throwsAsync(selectSources(root, ['//../a.txt']), { message: 'COPY failed: forbidden path outside the build context: /../a.txt ()' });
  await t.throwsAsync(selectSources(root, ['./../a.txt']), { message: 'COPY failed: forbidden path outside the build context: ../a.txt ()' });
  await t.throwsAsync(selectSources(root, ['/../../a.txt']), { message: 'COPY failed: forbidden path outside the build context: ../../a.txt ()' });
  // so does the not-found message (dockerd: 'COPY /s/d/ /ex2/' -> 'stat s/d/: file does not exist')
  const notFound = (p: string): string => `COPY failed: file not found in build context or excluded by .dockerignore: stat ${p}: file does not exist`;
  await t.throwsAsync(selectSources(root, ['/nope/d/']), { message: notFound('nope/d/') });
  await t.throwsAsync(selectSources(root, ['./nope']), { message: notFound('nope') });
});

test('selectSources: wildcard matches in UTF-8 byte order, as Go sorts them (U+FF01 before U+1F600; UTF-16 order says otherwise)', async (t) => {
  const root = await tempDir(t);
  for (const n of ['w\u{1F600}', 'w\uFF01', 'wa', 'w\u00e9']) await writeFile(path.join(root, n), n);
  t.deepEqual(names(await selectSources(root, ['w*'])), ['wa', 'w\u00e9', 'w\uFF01', 'w\u{1F600}']);
});

test('selectSources: each entry of a directory walk has the lstat of its file, to the nanosecond (the addon\'s batched lstat)', async (t) => {
  const root = await tempDir(t);
  await tree(root, ctxSpec);
  // more names than one native call takes, sub-second times, a fifo, odd modes
  for (let i = 0; i < 300; i++) await writeFile(path.join(root, 'dir', `n${i}`), `${i}`);
  await utimes(path.join(root, 'dir/f1'), 1_600_000_000.123456789, 1_700_000_000.987654321);
  await chmod(path.join(root, 'dir/sub/f2'), 0o4750);
  const { execFileSync } = await import('node:child_process');
  execFileSync('mkfifo', [path.join(root, 'dir/fifo')]);
  const [src] = await selectSources(root, ['.'], {});
  const { lstatSync } = await import('node:fs');
  t.true(src!.entries.length > 300);
  for (const e of src!.entries) {
    const st = lstatSync(e.hostPath, { bigint: true });
    const type = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
    t.deepEqual(
      [e.type, e.mode, e.uid, e.gid, e.size, e.dev, e.ino, e.nlink, e.mtimeNs, e.ctimeNs],
      [type, Number(st.mode & 0o7777n), Number(st.uid), Number(st.gid), type === 'file' ? Number(st.size) : 0, st.dev, st.ino, Number(st.nlink), st.mtimeNs, st.ctimeNs],
      e.rel,
    );
    if (type === 'symlink') t.is(e.linkTarget, (await import('node:fs')).readlinkSync(e.hostPath));
  }
  t.is(src!.entries.find((e) => e.rel === 'dir/fifo')?.type, 'other');
});
