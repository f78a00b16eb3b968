/**
 * An inter-process lock on a file, exclusive or shared: `flock(2)` on an open file description of ours,
 * which stays open here until `release()` closes it. If this process dies, the kernel closes the
 * descriptor and the lock is released, so a crash never leaves a stale lock behind.
 *
 * Node has no flock call. A free lock is taken with one non-blocking flock(2) through `@tsbuild/sys`.
 * Waiting for a taken one (and everything, where that addon is not built) goes to a `flock(1)`
 * helper process: it is handed our descriptor (as its fd 3), takes `LOCK_EX` (or `LOCK_SH`) on it
 * and exits, so the wait never blocks this process's event loop.
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { LOCK_EX, LOCK_NB, LOCK_SH, sysCalls, type SysCalls } from '@tsbuild/sys';
import { LockError } from './errors.js';

/** A held lock; `release()` frees it (idempotent). */
export interface HeldLock {
  release(): Promise<void>;
}

/** Options of `acquireLock`. */
export interface LockOptions {
  signal?: AbortSignal;
  /** A shared lock (`LOCK_SH`: held by many at once, excluded by an exclusive one) instead of an exclusive one. */
  shared?: boolean;
  /**
   * Called once when the lock is not free at once, before waiting for it (so a command can say
   * what it waits for).
   */
  onWait?: () => void;
  /** The system calls that take a free lock; null: the flock(1) helper only. Default: `sysCalls()`. */
  sys?: SysCalls | null;
}

/** Runs the flock(1) helper on `fd`: 0 when locked, 1 when `-n` found it taken. */
function flockHelper(path: string, fd: number, args: string[], signal: AbortSignal | undefined): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    // (an abort listener added to an aborted signal never fires: the wait would outlast the abort)
    if (signal?.aborted === true) {
      reject(new LockError(`waiting for lock ${path} was cancelled`, { cause: signal.reason }));
      return;
    }
    const child = spawn('flock', [...args, '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const onAbort = (): void => void child.kill('SIGKILL');
    signal?.addEventListener('abort', onAbort, { once: true });
    child.once('error', (err) => {
      signal?.removeEventListener('abort', onAbort);
      reject(new LockError(`cannot run flock to lock ${path}`, { cause: err, hint: 'install util-linux (flock)' }));
    });
    child.once('close', (code, sig) => {
      signal?.removeEventListener('abort', onAbort);
      if (code === 0 || (code === 1 && args.includes('-n'))) resolve(code);
      else if (signal?.aborted) reject(new LockError(`waiting for lock ${path} was cancelled`, { cause: signal.reason }));
      else reject(new LockError(`locking ${path} failed (flock exited ${code ?? sig}): ${stderr.trim()}`));
    });
  });
}

/**
 * Waits for the lock on `path` (created if missing), exclusive unless `shared`, and returns it.
 * @throws LockError when the helper fails, or the signal aborts the wait.
 */
export async function acquireLock(path: string, { signal, shared = false, onWait, sys = sysCalls() }: LockOptions = {}): Promise<HeldLock> {
  signal?.throwIfAborted();
  let fd: number;
  try {
    fd = openSync(path, 'a', 0o644);
  } catch (err) {
    throw new LockError(`cannot open the lock file ${path}`, { cause: err, hint: 'check that the store directory is writable' });
  }
  try {
    const mode = shared ? '-s' : '-x';
    let free: boolean;
    try {
      free = sys !== undefined && sys !== null ? sys.flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) : onWait !== undefined && (await flockHelper(path, fd, [mode, '-n'], signal)) === 0;
    } catch (err) {
      if (err instanceof LockError) throw err;
      throw new LockError(`locking ${path} failed: ${(err as Error).message}`, { cause: err });
    }
    if (!free) {
      onWait?.();
      await flockHelper(path, fd, [mode], signal);
    }
  } catch (err) {
    closeSync(fd);
    throw err;
  }
  let open = true;
  return {
    release() {
      if (open) {
        open = false;
        closeSync(fd);
      }
      return Promise.resolve();
    },
  };
}
