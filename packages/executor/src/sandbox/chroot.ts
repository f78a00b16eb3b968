import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SandboxError } from './errors.js';
import { findTool, requireTool } from './host-tools.js';
import { writeHostFiles } from './host-files.js';
import { ensureDirInRoot, ensureFileInRoot } from './root-path.js';
import { DEFAULT_CAPABILITIES, DEFAULT_DEVICES, type RunSpec } from './spec.js';
import { waitForExit } from './output.js';
import { resolveUser } from './user.js';

/**
 * Runs inside the new mount, pid, ipc and uts namespaces as pid 1 (host tools, host paths):
 * mounts everything listed in the fstab (one `mount` process for all: forks are most of the
 * cost), copies the device nodes and /dev symlinks into the new /dev, sets the hostname, brings
 * `lo` up for `none`, then execs the rest. Mounts die with the namespace; `--propagation
 * private` keeps them from reaching the host.
 * Arguments: mount-bin fstab dev-template dev hostname network ip-bin -- cmd…
 */
const SETUP_SCRIPT = `set -e
mnt=$1 fstab=$2 tmpl=$3 dev=$4 hostname=$5 net=$6 ip=$7; shift 7
"$mnt" --all --fstab "$fstab"
cp -a ${DEFAULT_DEVICES.map(([p]) => p).join(' ')} "$tmpl"/. "$dev"/
printf %s "$hostname" > /proc/sys/kernel/hostname
if [ "$net" = none ] && [ -n "$ip" ]; then "$ip" link set lo up; fi
exec "$@"
`;

/** Escapes a path for an fstab field (space, tab, newline and backslash as octal, like fstab(5)). */
function fstabField(p: string): string {
  return p.replace(/[\\ \t\n]/g, (c) => '\\' + c.charCodeAt(0).toString(8).padStart(3, '0'));
}

/** The fstab of the sandbox's mounts, in mount order; `X-mount.mkdir` makes /dev's subdirectories. */
function sandboxFstab(m: { proc: string; dev: string; sys: string; binds: [string, string][] }): string {
  const lines: [string, string, string, string][] = [
    ['proc', m.proc, 'proc', 'nosuid,noexec,nodev'],
    ['tmpfs', m.dev, 'tmpfs', 'nosuid,strictatime,mode=755,size=65536k'],
    ['devpts', path.join(m.dev, 'pts'), 'devpts', 'nosuid,noexec,newinstance,ptmxmode=0666,mode=0620,gid=5,X-mount.mkdir'],
    ['shm', path.join(m.dev, 'shm'), 'tmpfs', 'nosuid,noexec,nodev,mode=1777,size=67108864,X-mount.mkdir'],
    ['mqueue', path.join(m.dev, 'mqueue'), 'mqueue', 'nosuid,noexec,nodev,X-mount.mkdir'],
    ['sysfs', m.sys, 'sysfs', 'ro,nosuid,noexec,nodev'],
    ...m.binds.map(([src, dst]): [string, string, string, string] => [src, dst, 'none', 'bind']),
  ];
  return lines.map(([src, dst, type, opts]) => `${fstabField(src)} ${fstabField(dst)} ${type} ${opts} 0 0\n`).join('');
}

/** /dev's symlinks (Docker/runc make the same), copied into the new /dev by the setup script. */
async function writeDevTemplate(dir: string): Promise<void> {
  await mkdir(dir);
  const links: [string, string][] = [
    ['ptmx', 'pts/ptmx'], ['fd', '/proc/self/fd'], ['stdin', '/proc/self/fd/0'],
    ['stdout', '/proc/self/fd/1'], ['stderr', '/proc/self/fd/2'], ['core', '/proc/kcore'],
  ];
  for (const [name, target] of links) await symlink(target, path.join(dir, name));
}

/**
 * Runs `spec` with `unshare` + chroot (no OCI runtime): namespaces mount, pid, ipc, uts (+ net
 * for `none`), the same /proc, /dev, /sys and /etc mounts as the OCI mode, Docker's capability
 * bounding set (no_new_privs off, as in Docker: setuid binaries work), and the user set through setpriv (gid, groups) and unshare (uid).
 * Memory and CPU limits are not applied in this mode.
 */
export async function runWithChroot(spec: RunSpec, stateDir: string, id: string): Promise<{ exitCode: number; oomKilled: boolean }> {
  const [unshare, setpriv, envBin, sh, mnt] = await Promise.all([
    requireTool('unshare', 'util-linux'),
    requireTool('setpriv', 'util-linux (setpriv)'),
    requireTool('env', 'coreutils'),
    requireTool('sh', 'a POSIX shell'),
    requireTool('mount', 'util-linux (mount)'),
  ]);
  const ip = (await findTool('ip')) ?? '';
  if (spec.mounts?.length) throw new SandboxError('RUN --mount is not supported with chroot isolation', { hint: 'use --isolation oci' });
  const dir = path.join(stateDir, `chroot-${id}`);
  await mkdir(dir, { recursive: true });
  try {
    const hostname = spec.hostname ?? id.slice(0, 12);
    const files = await writeHostFiles(dir, hostname, spec.extraHosts);
    const root = spec.rootfs;
    // Mount points are created here, resolved inside the rootfs: a hostile symlink in the
    // image (etc -> /) must not make the setup script write on the host.
    const [proc, dev, sys, hosts, resolv, hostnameFile] = await Promise.all([
      ensureDirInRoot(root, '/proc'), ensureDirInRoot(root, '/dev'), ensureDirInRoot(root, '/sys'),
      ensureFileInRoot(root, '/etc/hosts'), ensureFileInRoot(root, '/etc/resolv.conf'), ensureFileInRoot(root, '/etc/hostname'),
    ]);
    await ensureDirInRoot(root, spec.cwd);
    // Like runc: HOME from the rootfs's passwd entry for the uid when the step's env has none.
    const env = spec.env.some((e) => e.startsWith('HOME=')) ? spec.env : [...spec.env, `HOME=${(await resolveUser(root, String(spec.user.uid))).home || '/'}`];
    for (const e of env) if (!e.includes('=')) throw new SandboxError(`environment entry "${e}" has no '='`);
    const caps = DEFAULT_CAPABILITIES.map((c) => '+' + c.slice('CAP_'.length).toLowerCase()).join(',');
    const groups = spec.user.additionalGids.length > 0 ? ['--groups', spec.user.additionalGids.join(',')] : ['--clear-groups'];
    const inner = [
      envBin, '-i', ...env,
      setpriv, '--regid', String(spec.user.gid), ...groups, '--bounding-set', `-all,${caps}`, '--inh-caps', '-all',
      unshare, `--root=${root}`, `--wd=${spec.cwd}`, '--setuid', String(spec.user.uid), '--', ...spec.args,
    ];
    const fstab = path.join(dir, 'fstab');
    const devTemplate = path.join(dir, 'dev');
    await writeFile(fstab, sandboxFstab({ proc, dev, sys, binds: [[files.hosts, hosts], [files.resolvConf, resolv], [files.hostname, hostnameFile]] }));
    await writeDevTemplate(devTemplate);
    const args = [
      '--mount', '--pid', '--ipc', '--uts', ...(spec.network === 'none' ? ['--net'] : []),
      '--propagation', 'private', '--kill-child=SIGKILL', '--',
      sh, '-c', SETUP_SCRIPT, 'sandbox-setup', mnt, fstab, devTemplate, dev, hostname, spec.network, ip,
      ...inner,
    ];
    spec.signal?.throwIfAborted();
    const child = spawn(unshare, args, { stdio: ['ignore', 'pipe', 'pipe'], env: {} });
    const exited = waitForExit(child, spec.onOutput);
    // Killing the namespace's pid 1 (unshare's child) kills every process in the pid namespace;
    // the mount namespace and its mounts go with the last of them. unshare --kill-child alone
    // is not enough: the parent-death signal is cleared when setpriv changes credentials.
    const onAbort = () => void killNamespace(child.pid);
    spec.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const { code } = await exited;
      spec.signal?.throwIfAborted();
      return { exitCode: code, oomKilled: false };
    } catch (err) {
      throw new SandboxError(spec.signal?.aborted ? 'RUN step aborted' : 'running the step in the chroot sandbox', { cause: spec.signal?.reason ?? err });
    } finally {
      spec.signal?.removeEventListener('abort', onAbort);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** SIGKILLs the children of `pid` (the pid namespace's init), then `pid` itself if none. */
async function killNamespace(pid: number | undefined): Promise<void> {
  if (pid === undefined) return;
  let children: number[] = [];
  try {
    children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).split(' ').filter((s) => s.trim() !== '').map(Number);
  } catch {
    // unshare already exited
  }
  for (const c of children) {
    try {
      process.kill(c, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  try {
    if (children.length === 0) process.kill(pid, 'SIGKILL');
  } catch {
    // already gone
  }
}
