/** Build output warnings as dockerd 20.10's classic builder prints them (checked, oracle5/cli1). */
import test from 'ava';
import { writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { runMain, tempDir } from './helpers.js';

test('build args no ARG declares: "[Warning] One or more build-args [..] were not consumed" on stdout, a NAME the environment does not set included; -q prints only the ID', async (t) => {
  const dir = await tempDir(t);
  const ctxDir = path.join(dir, 'ctx');
  await import('node:fs/promises').then((fs) => fs.mkdir(ctxDir));
  await writeFile(path.join(ctxDir, 'Dockerfile'), 'FROM scratch\nARG USED=1\nARG DECLARED\nLABEL u=$USED\n');
  const root = path.join(dir, 'store');
  const flags = ['--build-arg', 'NOTUSED=1', '--build-arg', 'USED=2', '--build-arg', 'FROMENV', '--build-arg', 'UNSETENV', '--build-arg', 'DECLARED'];
  const r = await runMain(root, ['build', ...flags, ctxDir], { env: { FROMENV: 'x' } });
  t.is(r.code, 0, r.stderr);
  t.true(r.stdout.includes('\n[Warning] One or more build-args [NOTUSED FROMENV UNSETENV] were not consumed\nSuccessfully built '), r.stdout);
  t.false(r.stderr.includes('not consumed'));
  const q = await runMain(root, ['build', '-q', ...flags, ctxDir], { env: { FROMENV: 'x' } });
  t.is(q.code, 0, q.stderr);
  t.regex(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
  t.is(q.stderr, '');
});

test('empty continuation lines: Docker\'s warnings on stdout before Step 1 (one per instruction, then the note); none with -q', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nLABEL a=1 \\\n\n b=2\n');
  const root = path.join(dir, 'store');
  const r = await runMain(root, ['build', dir]);
  t.is(r.code, 0, r.stderr);
  t.true(
    r.stdout.startsWith('[WARNING]: Empty continuation line found in:\n    LABEL a=1  b=2\n[WARNING]: Empty continuation lines will become errors in a future release.\nStep 1/2 : FROM scratch\n'),
    r.stdout,
  );
  t.false(r.stderr.includes('continuation'));
  // FROM scratch: dockerd prints ' ---> ' with no ID (checked, h1/p27)
  t.true(r.stdout.includes('Step 1/2 : FROM scratch\n ---> \nStep 2/2 : LABEL a=1  b=2\n'), r.stdout);
  const q = await runMain(root, ['build', '-q', dir]);
  t.regex(q.stdout, /^sha256:[0-9a-f]{64}\n$/);
  t.is(q.stderr, '');
});

test('-q: a failing build prints the build output it kept on stderr before the error, as docker (dockerd sends it on failure)', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'Dockerfile'), 'FROM scratch\nLABEL a=1\nCOPY nope /x\n');
  const r = await runMain(path.join(dir, 'store'), ['build', '-q', dir]);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^Step 1\/3 : FROM scratch\n(.*\n)*Step 3\/3 : COPY nope \/x\nerror: Dockerfile:3: COPY nope \/x: COPY failed: /);
});

// dockerd 20.10 (oracle5/steps1): steps are numbered across the Dockerfile up to the target (meta
// ARGs, every stage, --label steps); a base image's ONBUILD triggers run inside FROM, unnumbered
test('Step N/M numbered as docker across stages; ONBUILD triggers as "# Executing 2 build triggers"', async (t) => {
  const dir = await tempDir(t);
  await writeFile(path.join(dir, 'Dockerfile'), 'ARG X=1\nFROM scratch AS p\nONBUILD LABEL t1=1\nONBUILD LABEL t2=2\nFROM scratch AS other\nLABEL o=1\nFROM p AS final\nLABEL done=1\nFROM scratch AS after\n');
  const r = await runMain(path.join(dir, 'store'), ['build', '--target', 'final', '--label', 'z=1', dir]);
  t.is(r.code, 0, r.stderr);
  const lines = r.stdout.split('\n').filter((l) => !l.startsWith(' ---> ') && l !== '' && !l.startsWith('Successfully'));
  t.deepEqual(lines, [
    'Step 1/9 : ARG X=1',
    'Step 2/9 : FROM scratch AS p',
    'Step 3/9 : ONBUILD LABEL t1=1',
    'Step 4/9 : ONBUILD LABEL t2=2',
    // a stage the target does not read is built too, as Docker does
    'Step 5/9 : FROM scratch AS other',
    'Step 6/9 : LABEL o=1',
    'Step 7/9 : FROM p AS final',
    '# Executing 2 build triggers',
    'Step 8/9 : LABEL done=1',
    'Step 9/9 : LABEL z=1',
  ]);
  // FROM p's ID line comes once, after the triggers
  t.regex(r.stdout, /Step 7\/9 : FROM p AS final\n# Executing 2 build triggers\n ---> [0-9a-f]{12}[^\n]*\nStep 8\/9/);
});
