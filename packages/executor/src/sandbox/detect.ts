import { SandboxError } from './errors.js';
import { findTool } from './host-tools.js';

/** How RUN steps are isolated: an OCI runtime (runc) or unshare + chroot. */
export type Isolation = 'oci' | 'chroot';

/**
 * The first OCI runtime installed, runc then crun: an executable file in the tool directories. It
 * is not run to check it (`runc --version` was one process start, 45-50 ms, in every build with a
 * RUN step); one that cannot start fails the first RUN step saying so (runc.ts).
 */
async function findRuntime(): Promise<string | undefined> {
  for (const name of ['runc', 'crun']) {
    const p = await findTool(name);
    if (p !== undefined) return p;
  }
  return undefined;
}

async function chrootWorks(): Promise<boolean> {
  const tools = await Promise.all(['unshare', 'setpriv', 'mount', 'env', 'sh'].map(findTool));
  return tools.every((t) => t !== undefined);
}

/**
 * Picks the isolation for RUN steps. `auto` (default) prefers an OCI runtime (runc, then crun)
 * and falls back to chroot (util-linux unshare + setpriv). Both need root.
 * @throws SandboxError naming both options when the requested one (or, for auto, neither) works.
 */
export async function detectIsolation(pref: Isolation | 'auto' = 'auto'): Promise<{ isolation: Isolation; runtime?: string }> {
  const both = 'install runc for --isolation oci, or util-linux (unshare, setpriv) for --isolation chroot';
  if (process.getuid?.() !== 0) throw new SandboxError('running RUN steps needs root', { hint: 'run tsbuild as root (rootless builds are not supported yet)' });
  if (pref !== 'chroot') {
    const runtime = await findRuntime();
    if (runtime !== undefined) return { isolation: 'oci', runtime };
    if (pref === 'oci') throw new SandboxError('no OCI runtime (runc or crun) found for --isolation oci', { hint: both });
  }
  if (await chrootWorks()) return { isolation: 'chroot' };
  throw new SandboxError(
    pref === 'chroot' ? 'unshare/setpriv/mount not found for --isolation chroot' : 'no sandbox for RUN: neither an OCI runtime nor unshare+chroot is available',
    { hint: both },
  );
}
