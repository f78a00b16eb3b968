/** push / pull lines for references without a tag, with tag and digest, and missing images, as the docker 20.10 CLI prints them. */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO, runMain, startRegistry, tempDir, type Run } from './helpers.js';

test('push without a tag says "Using default tag: latest"; a missing image is dockerd\'s "An image does not exist locally with the tag: NAME"; pull name:tag@digest is a digest pull', async (t) => {
  const host = await startRegistry(t, 'alice', 's3cret');
  const dir = await tempDir(t);
  const run = (root: string, argv: string[], stdin?: string): Promise<Run> =>
    runMain(root, argv, { ...(stdin === undefined ? {} : { stdin }), env: { HOME: join(dir, 'home'), SOURCE_DATE_EPOCH: '0' } });
  const src = join(dir, 'src');
  execFileSync(join(REPO, 'scripts/make-busybox-rootfs.sh'), [join(dir, 'rootfs')]);
  const rootfs = execFileSync('tar', ['-C', join(dir, 'rootfs'), '-c', '.'], { maxBuffer: 1 << 28 });
  t.is((await runMain(src, ['import', '-', `${host}/cli/pr`], { stdin: rootfs, env: { HOME: join(dir, 'home') } })).code, 0);
  t.is((await run(src, ['login', '-u', 'alice', '--password-stdin', host], 's3cret\n')).code, 0);

  const pushed = await run(src, ['push', `${host}/cli/pr`]);
  t.is(pushed.code, 0, pushed.stderr);
  t.true(pushed.stdout.startsWith(`Using default tag: latest\nThe push refers to repository [${host}/cli/pr]\n`), pushed.stdout);
  const digest = /\nlatest: digest: (sha256:[0-9a-f]{64}) size: \d+\n$/.exec(pushed.stdout)?.[1];
  t.truthy(digest, pushed.stdout);
  t.false((await run(src, ['push', `${host}/cli/pr:latest`])).stdout.includes('Using default tag'));

  const missing = await run(src, ['push', `${host}/cli/none:1`]);
  t.is(missing.code, 1);
  t.is(missing.stdout, `The push refers to repository [${host}/cli/none]\n`);
  t.true(missing.stderr.startsWith(`error: An image does not exist locally with the tag: ${host}/cli/none\n`), missing.stderr);

  const dst = join(dir, 'dst');
  const input = `${host}/cli/pr:other@${digest}`;
  const canonical = `${host}/cli/pr@${digest}`;
  const byBoth = await run(dst, ['pull', input]);
  t.is(byBoth.code, 0, byBoth.stderr);
  t.regex(byBoth.stdout, new RegExp(`^${canonical}: Pulling from cli/pr\n[0-9a-f]{12}: Pull complete\nDigest: ${digest}\nStatus: Downloaded newer image for ${canonical}\n${input}\n$`));
  t.is((await run(dst, ['pull', `${host}/cli/pr`])).stdout, `Using default tag: latest\nlatest: Pulling from cli/pr\nDigest: ${digest}\nStatus: Downloaded newer image for ${host}/cli/pr:latest\n${host}/cli/pr:latest\n`);
  t.is((await run(dst, ['pull', canonical])).stdout, `${canonical}: Pulling from cli/pr\nDigest: ${digest}\nStatus: Image is up to date for ${canonical}\n${canonical}\n`);
});
