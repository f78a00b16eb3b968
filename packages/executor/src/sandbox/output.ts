import type { ChildProcess } from 'node:child_process';
import type { RunSpec } from './spec.js';
import { signalNumber } from './host-tools.js';

/**
 * Forwards a child's stdout/stderr to `onOutput` and resolves with its exit code once both
 * streams are drained (a signal-killed child gives 128+n). `stderrTail` keeps the last few KiB
 * of stderr for error messages from the runtime itself.
 */
export function waitForExit(child: ChildProcess, onOutput: RunSpec['onOutput']): Promise<{ code: number; stderrTail: string }> {
  let tail = '';
  child.stdout?.on('data', (b: Buffer) => onOutput?.('stdout', b));
  child.stderr?.on('data', (b: Buffer) => {
    onOutput?.('stderr', b);
    tail = (tail + b.toString('utf8')).slice(-4096);
  });
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, sig) => resolve({ code: code ?? 128 + signalNumber(sig), stderrTail: tail }));
  });
}
