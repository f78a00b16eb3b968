/**
 * An exclusive inter-process lock on a file: `flock(2)` on an open file description of ours. Node
 * has no flock call, so a `flock(1)` helper is handed our descriptor (as its fd 3), takes
 * `LOCK_EX` on it and exits; the lock belongs to the open file description, which stays open here
 * until `release()` closes it. If this process dies, the kernel closes the descriptor and the lock
 * is released, so a crash never leaves a stale lock behind. One short-lived helper per lock (it
 * was three, for the whole time the lock was held).
 */
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { LockError } from './errors.js';

/** A held lock; `release()` frees it (idempotent). */
export interface HeldLock {
  release(): Promise<void>;
}

/**
 * Waits for the exclusive lock on `path` (created if missing) and returns it.
 * @throws LockError when the helper fails, or the signal aborts the wait.
 */
export async function acquireLock(path: string, { signal }: { signal?: AbortSignal } = {}): Promise<HeldLock> {
  signal?.throwIfAborted();
  let fd: number;
  try {
    fd = openSync(path, 'a', 0o644);
  } catch (err) {
    throw new LockError(`cannot open the lock file ${path}`, { cause: err, hint: 'check that the store directory is writable' });
  }
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('flock', ['-x', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd] });
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
        if (code === 0) resolve();
        else if (signal?.aborted) reject(new LockError(`waiting for lock ${path} was cancelled`, { cause: signal.reason }));
        else reject(new LockError(`locking ${path} failed (flock exited ${code ?? sig}): ${stderr.trim()}`));
      });
    });
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
