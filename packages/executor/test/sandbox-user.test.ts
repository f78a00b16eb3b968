import test from 'ava';
import { mkdtemp, mkdir, rm, writeFile, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveUser, SandboxError } from '../src/sandbox/index.js';

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\napp:x:1000:\nstaff:x:50:app\nwheel:x:10:root,app\nnogroup:x:65534:\n';

async function rootfs(t: import('ava').ExecutionContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'sandbox-user-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'etc'));
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(dir, 'etc', name), text);
  return dir;
}

const cases: [string, { uid: number; gid: number; additionalGids: number[]; home?: string }][] = [
  ['', { uid: 0, gid: 0, additionalGids: [0] }],
  ['root', { uid: 0, gid: 0, additionalGids: [0, 10], home: '/root' }],
  ['app', { uid: 1000, gid: 1000, additionalGids: [1000, 50, 10], home: '/home/app' }],
  ['1000', { uid: 1000, gid: 1000, additionalGids: [1000, 50, 10], home: '/home/app' }],
  ['app:staff', { uid: 1000, gid: 50, additionalGids: [50], home: '/home/app' }],
  ['app:65534', { uid: 1000, gid: 65534, additionalGids: [65534], home: '/home/app' }],
  ['1234', { uid: 1234, gid: 0, additionalGids: [0] }],
  ['1234:50', { uid: 1234, gid: 50, additionalGids: [50] }],
  ['1234:4321', { uid: 1234, gid: 4321, additionalGids: [4321] }],
  ['nobody', { uid: 65534, gid: 65534, additionalGids: [65534], home: '/nonexistent' }],
];
for (const [user, expected] of cases) {
  test(`resolveUser: "${user}"`, async (t) => {
    t.deepEqual(await resolveUser(await rootfs(t, { passwd: PASSWD, group: GROUP }), user), expected);
  });
}

test('resolveUser: an unknown name fails like Docker', async (t) => {
  const dir = await rootfs(t, { passwd: PASSWD, group: GROUP });
  const err = await t.throwsAsync(resolveUser(dir, 'ghost'), { instanceOf: SandboxError });
  t.is(err?.message, 'unable to find user ghost: no matching entries in passwd file');
  t.is(err?.code, 'E_SANDBOX');
  await t.throwsAsync(resolveUser(dir, 'app:ghosts'), { message: 'unable to find group ghosts: no matching entries in group file' });
});

test('resolveUser: numeric ids work without passwd and group files; names do not', async (t) => {
  const dir = await rootfs(t, {});
  t.deepEqual(await resolveUser(dir, '5:6'), { uid: 5, gid: 6, additionalGids: [6] });
  await t.throwsAsync(resolveUser(dir, 'app'), { message: 'unable to find user app: no matching entries in passwd file' });
});

test('resolveUser: symlinks are resolved inside the rootfs, never on the host', async (t) => {
  const dir = await rootfs(t, { 'inner-passwd': 'inside:x:7:7::/:/bin/sh\n' });
  // Read on the host, this link would name the host's /etc/inner-passwd (absent) and host users.
  await symlink('../../../../../../../../../../etc/inner-passwd', path.join(dir, 'etc/passwd'));
  await symlink('/etc/inner-passwd', path.join(dir, 'etc/group'));
  t.is((await resolveUser(dir, 'inside')).uid, 7);
  await t.throwsAsync(resolveUser(dir, 'daemon'), { instanceOf: SandboxError });
});
