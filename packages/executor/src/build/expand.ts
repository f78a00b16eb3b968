/**
 * Turns a parsed instruction into the executor's step input, expanding the words Docker expands
 * (ENV, LABEL, EXPOSE, USER, WORKDIR, VOLUME, STOPSIGNAL, ARG defaults, COPY/ADD paths and flags)
 * with the parser's `expandWord`/`expandWords` and the step's variables. RUN/CMD/ENTRYPOINT are
 * never expanded by the builder (the shell does it).
 */
import type { Instruction, Lookup } from '@tsbuild/parser';
import { expandWord, expandWords } from '@tsbuild/parser';
import type { ConfigStep, CommandLine } from './config.js';

/** A step that changes the filesystem. */
export type FsStep =
  | { kind: 'RUN'; cmd: CommandLine; network?: 'default' | 'none' | 'host' }
  | {
      kind: 'COPY' | 'ADD';
      sources: string[];
      dest: string;
      from?: string;
      chown?: string;
      chmod?: string;
      /** ADD --checksum of a URL source */
      checksum?: string;
      heredocs: Array<{ name: string; content: string }>;
    };

export type ExpandedStep = ConfigStep | FsStep;

function cmdOf(form: 'exec' | 'shell', command: readonly string[] | string): CommandLine {
  return form === 'exec' ? { form: 'exec', args: [...(command as readonly string[])] } : { form: 'shell', command: command as string };
}

/**
 * Expands one instruction (not FROM, which the plan handles).
 * @throws the parser's ExpansionError on a bad `${…}`.
 */
export function expandStep(instr: Instruction, lookup: Lookup, escape: '\\' | '`'): ExpandedStep {
  const w = (s: string): string => expandWord(s, lookup, { escape });
  const ws = (s: string): string[] => expandWords(s, lookup, { escape });
  switch (instr.kind) {
    case 'ENV':
      return { kind: 'ENV', pairs: instr.pairs.map(([k, v]) => [w(k), w(v)]) };
    case 'LABEL':
      return { kind: 'LABEL', pairs: instr.pairs.map(([k, v]) => [w(k), w(v)]) };
    case 'CMD':
      return { kind: 'CMD', cmd: cmdOf(instr.form, instr.command) };
    case 'ENTRYPOINT':
      return { kind: 'ENTRYPOINT', cmd: cmdOf(instr.form, instr.command) };
    case 'EXPOSE':
      // the one instruction where a variable may expand into several words; Docker 20.10's
      // parser sorts the raw words (sort.Strings), the dispatcher expands them in that order
      return { kind: 'EXPOSE', ports: [...instr.ports].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)).flatMap(ws) };
    case 'USER':
      return { kind: 'USER', user: w(instr.user) };
    case 'WORKDIR':
      return { kind: 'WORKDIR', path: w(instr.path) };
    case 'VOLUME':
      return { kind: 'VOLUME', paths: instr.paths.map(w) };
    case 'STOPSIGNAL':
      return { kind: 'STOPSIGNAL', signal: w(instr.signal) };
    case 'SHELL':
      return { kind: 'SHELL', shell: [...instr.shell] };
    case 'HEALTHCHECK':
      if (instr.none) return { kind: 'HEALTHCHECK', health: { Test: ['NONE'] } };
      return {
        kind: 'HEALTHCHECK',
        health: {
          Test: [...instr.test],
          ...(instr.interval ? { Interval: instr.interval } : {}),
          ...(instr.timeout ? { Timeout: instr.timeout } : {}),
          ...(instr.startPeriod ? { StartPeriod: instr.startPeriod } : {}),
          ...(instr.startInterval ? { StartInterval: instr.startInterval } : {}),
          ...(instr.retries ? { Retries: instr.retries } : {}),
        },
      };
    case 'ONBUILD':
      return { kind: 'ONBUILD', trigger: instr.triggerText };
    case 'MAINTAINER':
      return { kind: 'MAINTAINER', name: instr.name };
    case 'ARG':
      return {
        kind: 'ARG',
        args: instr.args.map((a) => (a.defaultValue === undefined ? { name: a.name } : { name: a.name, value: w(a.defaultValue) })),
      };
    case 'RUN':
      return { kind: 'RUN', cmd: cmdOf(instr.form, instr.command), ...(instr.network ? { network: instr.network } : {}) };
    case 'COPY':
    case 'ADD':
      return {
        kind: instr.kind,
        sources: instr.sources.map(w),
        dest: w(instr.dest),
        ...(instr.kind === 'COPY' && instr.from !== undefined ? { from: w(instr.from) } : {}),
        ...(instr.chown !== undefined ? { chown: w(instr.chown) } : {}),
        ...(instr.chmod !== undefined ? { chmod: w(instr.chmod) } : {}),
        ...(instr.kind === 'ADD' && instr.checksum !== undefined ? { checksum: w(instr.checksum) } : {}),
        heredocs: instr.heredocs.map((h) => ({ name: h.name, content: h.expand ? w(h.content) : h.content })),
      };
    case 'FROM':
      throw new Error('FROM is planned, not expanded as a step');
  }
}
