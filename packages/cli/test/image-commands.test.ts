/** The image commands driven through main() with fake streams, against temp stores. */
import test, { type ExecutionContext } from 'ava';
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { REPO, runMain as run, tempDir } from './helpers.js';
import { humanDuration, humanSize, table } from '../src/commands/image-output.js';



/** A busybox rootfs tarball (bytes). */
async function busyboxTar(t: ExecutionContext): Promise<Buffer> {
  const dir = await tempDir(t);
  execFileSync(join(REPO, 'scripts/make-busybox-rootfs.sh'), [join(dir, 'rootfs')]);
  return execFileSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.'], { maxBuffer: 1 << 28 });
}

async function withImage(t: ExecutionContext, ref = 'lsexp:cli'): Promise<{ root: string; id: string }> {
  const root = join(await tempDir(t), 'store');
  const r = await run(root, ['import', '-c', 'CMD ["sh"]', '-m', 'made by test', '-', ref], { stdin: await busyboxTar(t), env: { SOURCE_DATE_EPOCH: '0' } });
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^sha256:[0-9a-f]{64}\n$/);
  return { root, id: r.stdout.trim() };
}

test('images, history, tag, inspect and rmi print what Docker prints', async (t) => {
  const { root, id } = await withImage(t);
  const short = id.slice(7, 19);
  const images = await run(root, ['images']);
  t.is(images.code, 0);
  const lines = images.stdout.split('\n');
  t.is(lines[0], 'REPOSITORY   TAG       IMAGE ID       CREATED        SIZE');
  t.regex(lines[1]!, new RegExp(`^lsexp        cli       ${short}   \\d+ years ago   1\\.\\d+MB$`));
  t.is((await run(root, ['images', '-q'])).stdout, `${short}\n`);
  t.is((await run(root, ['images', '-q', '--no-trunc'])).stdout, `${id}\n`);
  const json = JSON.parse((await run(root, ['images', '--format', '{{json .}}'])).stdout) as Record<string, string>;
  t.is(json.ID, short);
  t.is(json.Repository, 'lsexp');
  t.is(json.CreatedAt, '1970-01-01 00:00:00 +0000 UTC');

  const history = await run(root, ['history', 'lsexp:cli']);
  t.regex(history.stdout, /^IMAGE          CREATED        CREATED BY   SIZE      COMMENT\n/);
  t.regex(history.stdout, new RegExp(`\\n${short}   \\d+ years ago                1\\.\\d+MB    made by test\\n$`));
  t.is((await run(root, ['history', '-q', '--no-trunc', 'lsexp:cli'])).stdout, `${id}\n`);

  t.is((await run(root, ['tag', 'lsexp:cli', 'lsexp:two'])).code, 0);
  const inspect = JSON.parse((await run(root, ['inspect', 'lsexp:two'])).stdout) as Array<{ Id: string; RepoTags: string[]; Config: unknown }>;
  t.is(inspect[0]!.Id, id);
  t.deepEqual(inspect[0]!.RepoTags, ['lsexp:cli', 'lsexp:two']);
  t.deepEqual((inspect[0]!.Config as { Cmd: unknown }).Cmd, ['sh']);
  t.is((inspect[0]!.Config as { Env: unknown }).Env, null, 'unset fields are there, as null (Docker\'s shape)');

  const missing = await run(root, ['inspect', 'nosuch']);
  t.is(missing.code, 1);
  t.is(missing.stderr, 'Error: No such image: nosuch\n');
  t.is(missing.stdout, '[]\n');

  t.is((await run(root, ['rmi', 'lsexp:cli'])).stdout, 'Untagged: lsexp:cli\n');
  t.is((await run(root, ['tag', 'lsexp:two', 'lsexp:three'])).code, 0);
  const conflict = await run(root, ['rmi', short]);
  t.is(conflict.code, 1);
  t.regex(conflict.stderr, /must be forced/);
  // dockerd lists the references sorted (checked: a1, three, two)
  // then the layer it released, by chain ID (one layer: its diffID), as dockerd
  const layer = (await run(root, ['inspect', '-f', '{{index .RootFS.Layers 0}}', short])).stdout.trim();
  t.is((await run(root, ['rmi', '-f', short])).stdout, `Untagged: lsexp:three\nUntagged: lsexp:two\nDeleted: ${id}\nDeleted: ${layer}\n`);
  t.deepEqual(await readdir(join(root, 'blobs/sha256')), [], 'content goes with the last reference');
  t.is((await run(root, ['images', '-q'])).stdout, '');
});

test('save -o is atomic, load -i restores the tag; a bad name leaves no file', async (t) => {
  const { root, id } = await withImage(t);
  const dir = await tempDir(t);
  const bad = await run(root, ['save', '-o', join(dir, 'bad.tar'), 'lsexp:cli', 'nosuch']);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /^error: No such image: nosuch\n/);
  t.deepEqual(await readdir(dir), []);
  const ok = await run(root, ['save', '-o', join(dir, 'x.tar'), 'lsexp:cli']);
  t.is(ok.code, 0, ok.stderr);
  t.deepEqual(await readdir(dir), ['x.tar']);
  const other = join(dir, 'other');
  const loaded = await run(other, ['load', '-i', join(dir, 'x.tar')]);
  t.is(loaded.stdout, 'Loaded image: lsexp:cli\n');
  t.is((await run(other, ['images', '-q', '--no-trunc'])).stdout, `${id}\n`);
  // Untagged: saved by ID.
  const byID = await run(root, ['save', '-o', join(dir, 'id.tar'), id]);
  t.is(byID.code, 0);
  const third = await run(join(dir, 'third'), ['load'], { stdin: await readFile(join(dir, 'id.tar')) });
  t.is(third.stdout, `Loaded image ID: ${id}\n`);
});

test('save and export refuse to write to a terminal', async (t) => {
  const { root } = await withImage(t);
  for (const cmd of ['save', 'export']) {
    const r = await run(root, [cmd, 'lsexp:cli'], { tty: true });
    t.is(r.code, 125);
    t.regex(r.stderr, /cowardly refusing to (save|export) to a terminal/);
  }
});

test('export writes the flattened rootfs to stdout', async (t) => {
  const { root } = await withImage(t);
  const dir = await tempDir(t);
  const r = await run(root, ['export', '-o', join(dir, 'fs.tar'), 'lsexp:cli']);
  t.is(r.code, 0, r.stderr);
  const names = execFileSync('tar', ['-tf', join(dir, 'fs.tar')], { encoding: 'utf8' }).split('\n');
  t.true(names.includes('bin/busybox'));
  t.true(names.includes('etc/passwd'));
});

test('load of a broken archive prints the error and a hint, exit 1', async (t) => {
  const root = join(await tempDir(t), 'store');
  const r = await run(root, ['load'], { stdin: 'this is not a tar archive at all'.repeat(40) });
  t.is(r.code, 1);
  t.regex(r.stderr, /^error: .*not a tar archive.*\nhint: /);
});

test('prune -f reports reclaimed space; system df shows a table', async (t) => {
  const { root } = await withImage(t);
  const tarball = await busyboxTar(t);
  t.is((await run(root, ['import', '-c', 'CMD ["two"]', '-', 'lsexp:cli'], { stdin: tarball, env: { SOURCE_DATE_EPOCH: '0' } })).code, 0);
  const df = await run(root, ['system', 'df']);
  t.regex(df.stdout, /^TYPE          TOTAL     ACTIVE    SIZE      RECLAIMABLE\nImages        2         1         /);
  const noAnswer = await run(root, ['prune'], { stdin: 'n\n' });
  t.regex(noAnswer.stdout, /Are you sure you want to continue\? \[y\/N\] $/);
  const pruned = await run(root, ['prune', '-f']);
  t.regex(pruned.stdout, /^Deleted Images:\ndeleted: sha256:[0-9a-f]{64}\n\n/);
  t.regex(pruned.stdout, /Total reclaimed space: \d+(\.\d+)?[kM]?B\n$/);
  t.regex((await run(root, ['system', 'df'])).stdout, /\nImages        1         1         /);
});

const sizes: Array<[number, string]> = [
  [0, '0B'],
  [999, '999B'],
  [1000, '1kB'],
  [1984306, '1.98MB'],
  [5_600, '5.6kB'],
  [123_456_789, '123MB'],
  [1_500_000_000, '1.5GB'],
];
for (const [n, s] of sizes) test(`humanSize(${n}) = ${s}`, (t) => t.is(humanSize(n), s));

const durations: Array<[number, string]> = [
  [500, 'Less than a second'],
  [1000, '1 second'],
  [59_000, '59 seconds'],
  [60_000, 'About a minute'],
  [45 * 60_000, '45 minutes'],
  [3_600_000, 'About an hour'],
  [47 * 3_600_000, '47 hours'],
  [3 * 86_400_000, '3 days'],
  [21 * 86_400_000, '3 weeks'],
  [90 * 86_400_000, '3 months'],
  [56 * 365 * 86_400_000, '56 years'],
];
for (const [ms, s] of durations) test(`humanDuration(${ms}) = ${s}`, (t) => t.is(humanDuration(ms), s));

test('table pads like Docker\'s tabwriter (min width 10, padding 3)', (t) => {
  t.is(table([['REPOSITORY', 'TAG', 'SIZE'], ['a', 'latest', '1B']]), 'REPOSITORY   TAG       SIZE\na            latest    1B\n');
});

test('--format Go templates: inspect -f once per image, images/history rows and `table` headers', async (t) => {
  const { root, id } = await withImage(t, 'fmt:1');
  t.is((await run(root, ['tag', 'fmt:1', 'fmt:2'])).code, 0);
  const ins = await run(root, ['inspect', '-f', '{{.Id}} {{json .Config.Cmd}} {{.Config.Entrypoint}} {{.Comment}}', 'fmt:1', 'fmt:2']);
  t.is(ins.code, 0, ins.stderr);
  t.is(ins.stdout, `${id} ["sh"] [] made by test\n${id} ["sh"] [] made by test\n`);
  const tags = await run(root, ['inspect', '--format', '{{range .RepoTags}}{{.}},{{end}}', 'fmt:1']);
  t.is(tags.stdout, 'fmt:1,fmt:2,\n');
  const imgs = await run(root, ['images', '--format', '{{.Repository}}:{{.Tag}} {{.ID}}']);
  t.is(imgs.stdout, `fmt:1 ${id.slice(7, 19)}\nfmt:2 ${id.slice(7, 19)}\n`);
  const tbl = await run(root, ['images', '--format', 'table {{.Repository}}\\t{{.Tag}}\\t{{.ID}}']);
  t.is(tbl.stdout.split('\n')[0], 'REPOSITORY   TAG       IMAGE ID');
  t.regex(tbl.stdout.split('\n')[1] ?? '', /^fmt {10}1 {9}[0-9a-f]{12}$/);
  const hist = await run(root, ['history', '--format', '{{.CreatedBy}}|{{.Comment}}', 'fmt:1']);
  t.is(hist.stdout, '|made by test\n');
  const bad = await run(root, ['inspect', '-f', '{{.NoSuchField}}', 'fmt:1']);
  t.is(bad.code, 125);
  t.regex(bad.stderr, /map has no entry for key "NoSuchField"/);
  const unparsable = await run(root, ['images', '--format', '{{if .ID}}']);
  t.is(unparsable.code, 125);
  t.regex(unparsable.stderr, /invalid --format: .*missing \{\{end\}\}/);
});

test('save/export -o /dev/null or a FIFO write into it: the device node stays a device', async (t) => {
  const { root } = await withImage(t, 'devnull:1');
  const before = execFileSync('stat', ['-c', '%F %t:%T', '/dev/null'], { encoding: 'utf8' });
  // should the code regress, put the machine's /dev/null back for the tests that follow
  t.teardown(() => {
    if (execFileSync('stat', ['-c', '%F', '/dev/null'], { encoding: 'utf8' }).trim() !== 'character special file') {
      execFileSync('sh', ['-c', 'rm -f /dev/null && mknod -m 666 /dev/null c 1 3']);
    }
  });
  for (const cmd of [['save', '-o', '/dev/null', 'devnull:1'], ['export', '-o', '/dev/null', 'devnull:1']]) {
    const r = await run(root, cmd);
    t.is(r.code, 0, r.stderr);
    t.is(execFileSync('stat', ['-c', '%F %t:%T', '/dev/null'], { encoding: 'utf8' }), before, `${cmd[0]} left /dev/null a ${before}`);
  }
  t.deepEqual((await readdir('/dev')).filter((n) => n.includes('.tmp-')), [], 'no temp file left in /dev');
  const fifo = join(await tempDir(t), 'pipe');
  execFileSync('mkfifo', [fifo]);
  const reader = new Promise<number>((resolve, reject) => {
    const chunks: Buffer[] = [];
    import('node:fs').then(({ createReadStream }) => {
      const s = createReadStream(fifo);
      s.on('data', (c) => chunks.push(Buffer.from(c)));
      s.on('end', () => resolve(Buffer.concat(chunks).length));
      s.on('error', reject);
    }, reject);
  });
  const r = await run(root, ['save', '-o', fifo, 'devnull:1']);
  t.is(r.code, 0, r.stderr);
  t.true((await reader) > 1024, 'the archive went through the FIFO');
  t.is(execFileSync('stat', ['-c', '%F', fifo], { encoding: 'utf8' }).trim(), 'fifo');
});
