import { readFile } from 'node:fs/promises';
import { resolveInRoot } from './root-path.js';
import { SandboxError, errnoOf } from './errors.js';

/** The identity a RUN step runs as. */
export interface ResolvedUser {
  uid: number;
  gid: number;
  /**
   * Supplementary groups, as Docker sets them: the primary gid, plus the /etc/group entries
   * listing the user when no group was given.
   */
  additionalGids: number[];
  /** Home directory from /etc/passwd, when the user has an entry. */
  home?: string;
}

interface PasswdEntry { name: string; uid: number; gid: number; home: string }
interface GroupEntry { name: string; gid: number; members: string[] }

const MAX_ID = 2 ** 31 - 1;

/**
 * Resolves a Dockerfile `USER` value (`name`, `uid`, `name:group`, `uid:gid`, …) the way runc's
 * libcontainer/user does for Docker: /etc/passwd and /etc/group are read from the rootfs
 * (symlinks resolved inside it, never out of it); a numeric user or group works without them;
 * supplementary groups come from /etc/group only when no group was given.
 * @throws SandboxError like Docker's "unable to find user app: no matching entries in passwd file".
 */
export async function resolveUser(rootfs: string, user: string): Promise<ResolvedUser> {
  const colon = user.indexOf(':');
  const userArg = colon < 0 ? user : user.slice(0, colon);
  const groupArg = colon < 0 ? '' : user.slice(colon + 1);
  if (userArg === '' && groupArg === '') return { uid: 0, gid: 0, additionalGids: [0] };

  const passwd = parsePasswd(await readRootFile(rootfs, '/etc/passwd'));
  const numericUid = parseId(userArg);
  const entry = passwd.find((u) => u.name === userArg || (numericUid !== undefined && u.uid === numericUid));
  let uid: number;
  let gid = 0;
  let home: string | undefined;
  if (entry) {
    ({ uid, gid, home } = entry);
  } else if (numericUid !== undefined) {
    uid = numericUid;
  } else if (userArg === '') {
    uid = 0;
  } else {
    throw new SandboxError(`unable to find user ${userArg}: no matching entries in passwd file`, {
      hint: 'add the user to the image (e.g. RUN adduser) before USER, or use a numeric uid',
    });
  }

  const needGroups = groupArg !== '' || entry !== undefined;
  const groups = needGroups ? parseGroup(await readRootFile(rootfs, '/etc/group')) : [];
  const memberOf: number[] = [];
  if (groupArg !== '') {
    const numericGid = parseId(groupArg);
    const g = groups.find((x) => x.name === groupArg || (numericGid !== undefined && x.gid === numericGid));
    if (g) gid = g.gid;
    else if (numericGid !== undefined) gid = numericGid;
    else
      throw new SandboxError(`unable to find group ${groupArg}: no matching entries in group file`, {
        hint: 'add the group to the image (e.g. RUN addgroup) before USER, or use a numeric gid',
      });
  } else if (entry) {
    for (const g of groups) if (g.members.includes(entry.name)) memberOf.push(g.gid);
  }
  // Docker always lists the primary group among the supplementary ones (`id` shows it).
  const additionalGids = [...new Set([gid, ...memberOf])];
  return home === undefined ? { uid, gid, additionalGids } : { uid, gid, additionalGids, home };
}

/**
 * The owner of `COPY/ADD --chown=user[:group]`, as Docker 20.10's parseChownFlag (classic
 * builder): the group defaults to the user string (not the user's primary group); each part is a
 * number as is, else a name looked up in the rootfs's /etc/passwd resp. /etc/group (an empty part
 * is a name that never matches). Unlike USER, a missing name fails with Docker's message.
 * @throws SandboxError "unable to convert uid/gid chown string to host mapping: can't find uid for
 * user ghost: no such user: ghost" (resp. gid/group), "… user ghost: open /etc/passwd: no such file
 * or directory" when a name is looked up in an image without the file, or "invalid chown string
 * format: a:b:c".
 */
export async function resolveChown(rootfs: string, chown: string): Promise<{ uid: number; gid: number }> {
  const parts = chown.split(':');
  if (parts.length > 2) throw new SandboxError(`invalid chown string format: ${chown}`);
  const userStr = parts[0]!;
  const grpStr = parts.length === 2 ? parts[1]! : userStr;
  const fail = (what: string, why: string): SandboxError =>
    new SandboxError(`unable to convert uid/gid chown string to host mapping: ${what}: ${why}`, {
      hint: 'add the user or group to the image before this step, or give numeric ids',
    });
  const lookup = async (name: string, file: '/etc/passwd' | '/etc/group', what: string): Promise<number | undefined> => {
    const text = await readRootFile(rootfs, file, true);
    // Docker 20.10 fails on the open (its message names the file by its path on the host)
    if (text === undefined) throw fail(what, `open ${file}: no such file or directory`);
    const entries = file === '/etc/passwd' ? parsePasswd(text).map((u) => ({ name: u.name, id: u.uid })) : parseGroup(text).map((g) => ({ name: g.name, id: g.gid }));
    return entries.find((e) => e.name === name)?.id;
  };
  const uidWhat = `can't find uid for user ${userStr}`;
  const uid = parseId(userStr) ?? (await lookup(userStr, '/etc/passwd', uidWhat));
  if (uid === undefined) throw fail(uidWhat, `no such user: ${userStr}`);
  const gidWhat = `can't find gid for group ${grpStr}`;
  const gid = parseId(grpStr) ?? (await lookup(grpStr, '/etc/group', gidWhat));
  if (gid === undefined) throw fail(gidWhat, `no such group: ${grpStr}`);
  return { uid, gid };
}

function parseId(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  if (n > MAX_ID) throw new SandboxError(`user or group id ${s} is out of range (0..${MAX_ID})`);
  return n;
}

async function readRootFile(rootfs: string, p: string): Promise<string>;
async function readRootFile(rootfs: string, p: string, missingAsUndefined: true): Promise<string | undefined>;
async function readRootFile(rootfs: string, p: string, missingAsUndefined = false): Promise<string | undefined> {
  try {
    return await readFile(await resolveInRoot(rootfs, p), 'utf8');
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR') return missingAsUndefined ? undefined : '';
    throw new SandboxError(`reading ${p} from the rootfs`, { cause: err });
  }
}

function splitLines(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

function parsePasswd(text: string): PasswdEntry[] {
  const out: PasswdEntry[] = [];
  for (const f of splitLines(text)) {
    const uid = Number(f[2]), gid = Number(f[3]);
    if (f.length < 4 || !Number.isInteger(uid) || !Number.isInteger(gid) || f[2] === '' || f[3] === '') continue;
    out.push({ name: f[0]!, uid, gid, home: f[5] ?? '' });
  }
  return out;
}

function parseGroup(text: string): GroupEntry[] {
  const out: GroupEntry[] = [];
  for (const f of splitLines(text)) {
    const gid = Number(f[2]);
    if (f.length < 3 || f[2] === '' || !Number.isInteger(gid)) continue;
    out.push({ name: f[0]!, gid, members: (f[3] ?? '').split(',').filter((m) => m !== '') });
  }
  return out;
}
