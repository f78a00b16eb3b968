/**
 * Time slices for long synchronous loops (per-file syscalls, per-entry tar work). On this kind of
 * host an async fs call's thread-pool hand-off costs far more than the syscall, so hot loops call
 * the synchronous API and, every few milliseconds, let the event loop run (timers, I/O callbacks,
 * the thread pool's completions) and notice an abort.
 */

/** Default longest stretch of synchronous work before yielding, in ms. */
export const DEFAULT_SLICE_MS = 20;

/**
 * `if (slices.due()) await slices.yield();` in a loop: {@link TimeSlices.due} says the slice is
 * spent (a clock read, no await); {@link TimeSlices.yield} lets the event loop run, throws the
 * abort reason when `signal` was aborted meanwhile, and starts the next slice.
 */
export class TimeSlices {
  #start = performance.now();
  constructor(
    private readonly signal?: AbortSignal,
    private readonly sliceMs = DEFAULT_SLICE_MS,
  ) {}

  due(): boolean {
    return performance.now() - this.#start > this.sliceMs;
  }

  async yield(): Promise<void> {
    await new Promise<void>((r) => setImmediate(r));
    this.signal?.throwIfAborted();
    this.#start = performance.now();
  }
}
