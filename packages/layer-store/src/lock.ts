/**
 * An exclusive inter-process lock on a file, held by a spawned `flock(1)` helper: the helper takes
 * `flock(LOCK_EX)` and keeps it until its stdin closes. If this process dies, the kernel closes the
 * pipe, the helper exits and the lock is released, so a crash never leaves a stale lock behind.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
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
  const child = spawn('flock', ['-x', path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  const exited = once(child, 'exit').catch(() => undefined);
  const onAbort = (): void => {
    child.kill('SIGKILL');
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    await new Promise<void>((resolve, reject) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => {
        out += s;
        if (out.includes('locked\n')) resolve();
      });
      child.once('error', (err) => reject(new LockError(`cannot run flock to lock ${path}`, { cause: err, hint: 'install util-linux (flock)' })));
      child.once('exit', (code, sig) => {
        if (signal?.aborted) reject(new LockError(`waiting for lock ${path} was cancelled`, { cause: signal.reason }));
        else reject(new LockError(`locking ${path} failed (flock exited ${code ?? sig}): ${stderr.trim()}`));
      });
    });
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
  let released: Promise<void> | undefined;
  return {
    release() {
      released ??= (async () => {
        child.stdin.end();
        await exited;
      })();
      return released;
    },
  };
}
