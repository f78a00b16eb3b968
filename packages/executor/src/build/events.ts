/** Typed progress events of a build; the CLI renders them, the library never prints. */

export type BuildEvent =
  /**
   * `index`/`total` count the steps of the stage (0 = FROM); `step`/`steps` number it as Docker
   * 20.10's classic builder does, across the whole Dockerfile up to the target (meta ARGs, every
   * stage's FROM and instructions, --label steps); a base image's ONBUILD trigger has `trigger`
   * (Docker runs them inside FROM, unnumbered) and FROM tells how many there are (`triggers`).
   * A meta ARG (before the first FROM) has `stage` -1.
   */
  | { type: 'step-start'; stage: number; index: number; total: number; instruction: string; line: number; step?: number; steps?: number; trigger?: boolean; triggers?: number }
  | { type: 'step-log'; stage: number; index: number; stream: 'stdout' | 'stderr'; bytes: Uint8Array }
  | { type: 'step-cached'; stage: number; index: number }
  /** a cache miss and why (which input changed against the nearest previous record) */
  | { type: 'step-cache-miss'; stage: number; index: number; key: string; reason: string }
  /** `id`: the image ID the step's state commits as; '' after FROM scratch (Docker has no image yet) */
  | { type: 'step-done'; stage: number; index: number; durationMs: number; cached: boolean; layer?: string; id: string }
  | { type: 'step-error'; stage: number; index: number; message: string }
  /** every step of the stage is done (independent stages are built side by side: this orders their output) */
  | { type: 'stage-done'; stage: number }
  /**
   * `code` W_UNUSED_BUILD_ARG: build args no stage declared (Docker prints `[Warning] One or more
   * build-args [A B] were not consumed` in the build output); others: the Dockerfile's warnings
   */
  | { type: 'warning'; message: string; line?: number; code?: string };

/** Receives build events. Must not throw. */
export type BuildEventSink = (e: BuildEvent) => void;
