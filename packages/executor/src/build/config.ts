/**
 * Config-only instructions applied to an image config exactly as Docker 20.10's classic builder
 * does (moby `builder/dockerfile/dispatchers.go`), with the history `created_by` strings it writes.
 * Pure: no I/O, no clock. Inputs are already expanded (variables substituted).
 */
import type { ContainerConfig, HealthConfig } from '@tsbuild/layer-store';
import { isIP } from 'node:net';
import { BuildError } from './errors.js';
import { goDuration, goList, goQuoteList, goQuoteRune } from './gofmt.js';

/** Docker's default shell for shell-form commands on Linux. */
export const DEFAULT_SHELL: readonly string[] = ['/bin/sh', '-c'];
/** The PATH the classic builder puts into Env on `FROM scratch`, and into RUN's environment when unset. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** A command in exec form (a JSON array) or shell form (one string run by the current SHELL). */
export type CommandLine = { form: 'exec'; args: string[] } | { form: 'shell'; command: string };

/** One config-only instruction after variable expansion. */
export type ConfigStep =
  | { kind: 'ENV'; pairs: Array<[string, string]> }
  | { kind: 'LABEL'; pairs: Array<[string, string]> }
  | { kind: 'CMD'; cmd: CommandLine }
  | { kind: 'ENTRYPOINT'; cmd: CommandLine }
  | { kind: 'EXPOSE'; ports: string[] }
  | { kind: 'USER'; user: string }
  | { kind: 'WORKDIR'; path: string }
  | { kind: 'VOLUME'; paths: string[] }
  | { kind: 'STOPSIGNAL'; signal: string }
  | { kind: 'SHELL'; shell: string[] }
  | { kind: 'HEALTHCHECK'; health: HealthConfig }
  | { kind: 'ONBUILD'; trigger: string }
  | { kind: 'MAINTAINER'; name: string }
  | { kind: 'ARG'; args: Array<{ name: string; value?: string }> };

/** The part of a stage's state config steps read and write. */
export interface ConfigState {
  config: ContainerConfig;
  author?: string;
  /** whether CMD was set in this stage (ENTRYPOINT then keeps it; an inherited Cmd is reset) */
  cmdSet: boolean;
}

/** What applying one step gives: the new state and the history line Docker records. */
export interface ConfigResult {
  state: ConfigState;
  createdBy: string;
}

/** The shell a shell-form command runs in: the config's Shell, else `/bin/sh -c`. */
export function shellOf(config: ContainerConfig): string[] {
  return config.Shell && config.Shell.length > 0 ? [...config.Shell] : [...DEFAULT_SHELL];
}

/** The argv of a command line: exec form as is, shell form wrapped in the current shell. */
export function argvOf(cmd: CommandLine, config: ContainerConfig): string[] {
  return cmd.form === 'exec' ? [...cmd.args] : [...shellOf(config), cmd.command];
}

/** `<shell> #(nop)  <comment>`, the history form of `builder.commit(state, comment)`. */
export function nopCreatedBy(config: ContainerConfig, comment: string): string {
  return [...shellOf(config), '#(nop) ', comment].join(' ');
}

/** `<shell> #(nop) <comment>`, the form WORKDIR and COPY/ADD use (one space). */
export function nopCreatedBy1(config: ContainerConfig, comment: string): string {
  return [...shellOf(config), `#(nop) ${comment}`].join(' ');
}

/**
 * Docker's `normalizeWorkdir` (Unix): a relative path is joined to the current working dir and
 * cleaned (`filepath.Join("/", current, path)`); an absolute path is kept as written, so
 * `WORKDIR /a/b/` stores `/a/b/` and `WORKDIR //x/../y` stores `//x/../y` (Docker 20.10).
 */
export function normalizeWorkdir(current: string | undefined, path: string): string {
  // a path that expands to nothing (WORKDIR $UNSET, WORKDIR "") fails as in Docker 20.10
  if (path === '') throw new BuildError('E_STEP', 'cannot normalize nothing', { hint: 'WORKDIR needs a path; check the variables it uses are set' });
  if (path.startsWith('/')) return path;
  return cleanPath(`/${current ?? ''}/${path}`);
}

/** Go's `filepath.Clean` for absolute paths. */
export function cleanPath(p: string): string {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return '/' + parts.join('/');
}

/** Sets (in place of an existing key) or appends `key=value` in an Env list, as Docker does. */
export function setEnv(env: readonly string[], key: string, value: string): string[] {
  const out = [...env];
  const i = out.findIndex((e) => e === key || e.startsWith(`${key}=`));
  if (i >= 0) out[i] = `${key}=${value}`;
  else out.push(`${key}=${value}`);
  return out;
}

/**
 * The exposed port keys (`80/tcp`) of one EXPOSE spec, as go-connections' nat.ParsePortSpec that
 * Docker 20.10's dispatchExpose calls: `[ip:][hostPort:]containerPort[/proto]`, a range expanded,
 * the protocol lower-cased (text after a second `/` ignored, an empty one is tcp); only the container
 * port is exposed, the others are validated.
 * @throws BuildError E_STEP with nat's message ("Invalid containerPort: abc", "Invalid proto: foo", …).
 */
export function exposedPortsOf(spec: string): string[] {
  const bad = (message: string): BuildError => new BuildError('E_STEP', message, { hint: 'EXPOSE takes [ip:][hostPort:]port[-endPort][/tcp|udp|sctp]' });
  // splitParts
  const parts = spec.split(':');
  const n = parts.length;
  const rawIP = n >= 3 ? parts.slice(0, n - 2).join(':') : '';
  const hostPort = n >= 2 ? parts[n - 2]! : '';
  // SplitProtoPort
  const pp = parts[n - 1]!.split('/');
  const [proto, containerPort] = pp[0] === '' ? ['', ''] : pp.length === 1 || pp[1] === '' ? ['tcp', pp[0]!] : [pp[1]!, pp[0]!];
  // net.SplitHostPort(rawIP + ":") strips [] of an IPv6 address
  let ip = rawIP;
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  else if (ip.includes(':')) throw bad(`Invalid ip address ${rawIP}: address ${rawIP}:: too many colons in address`);
  if (ip !== '' && isIP(ip) === 0) throw bad(`Invalid ip address: ${ip}`);
  if (containerPort === '') throw bad(`No port specified: ${spec}<empty>`);
  const range = portRange(containerPort);
  if (!range) throw bad(`Invalid containerPort: ${containerPort}`);
  if (hostPort !== '') {
    const host = portRange(hostPort);
    if (!host) throw bad(`Invalid hostPort: ${hostPort}`);
    if (range[1] - range[0] !== host[1] - host[0] && range[1] !== range[0]) {
      throw bad(`Invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
    }
  }
  const lower = proto.toLowerCase();
  if (lower !== 'tcp' && lower !== 'udp' && lower !== 'sctp') throw bad(`Invalid proto: ${proto}`);
  const out: string[] = [];
  for (let p = range[0]; p <= range[1]; p++) out.push(`${p}/${lower}`);
  return out;
}

/** nat.ParsePortRange: `port` or `start-end`, each a 16-bit unsigned number, end ≥ start. */
function portRange(s: string): [number, number] | undefined {
  const u16 = (x: string | undefined): number | undefined => (x !== undefined && /^[0-9]+$/.test(x) && Number(x) <= 65535 ? Number(x) : undefined);
  const parts = s.split('-');
  const start = u16(parts[0]);
  const end = parts.length === 1 ? start : u16(parts[1]);
  return start === undefined || end === undefined || end < start ? undefined : [start, end];
}

/** Linux signal names of Docker 20.10's pkg/signal SignalMap (without the SIG prefix). */
const SIGNAL_NAMES: ReadonlySet<string> = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT',
  'SEGV', 'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
  'RTMIN', 'RTMAX', ...Array.from({ length: 15 }, (_, i) => `RTMIN+${i + 1}`), ...Array.from({ length: 14 }, (_, i) => `RTMAX-${i + 1}`),
]);

/**
 * Checks a STOPSIGNAL value as Docker 20.10's dispatchStopSignal (signal.ParseSignal): a non-zero
 * integer, or a signal name with or without SIG, any case. The value itself is kept as written.
 * @throws BuildError E_STEP "Invalid signal: SIGFOO".
 */
export function checkStopSignal(signal: string): void {
  const numeric = /^[+-]?[0-9]+$/.test(signal);
  const ok = numeric ? Number(signal) !== 0 : SIGNAL_NAMES.has(signal.toUpperCase().replace(/^SIG/, ''));
  if (!ok) throw new BuildError('E_STEP', `Invalid signal: ${signal}`, { hint: 'give a signal name such as SIGTERM or SIGKILL, or its number' });
}

/**
 * The note Docker 20.10's dispatchHealthcheck prints on the build output when a HEALTHCHECK
 * replaces one the config already has (set earlier or inherited, NONE aside), or undefined.
 */
export function healthcheckOverrideNote(config: ContainerConfig): string | undefined {
  const old = config.Healthcheck?.Test ?? [];
  // fmt.Fprintf(Stdout, "Note: overriding previous HEALTHCHECK: %v\n", oldCmd): Go's %v of a []string
  return old.length > 0 && old[0] !== 'NONE' ? `Note: overriding previous HEALTHCHECK: [${old.join(' ')}]\n` : undefined;
}

function healthHistory(h: HealthConfig): string {
  // fmt.Sprintf("HEALTHCHECK %q", &container.HealthConfig{Test, Interval, Timeout, StartPeriod, Retries})
  return `HEALTHCHECK &{${goQuoteList(h.Test ?? [])} "${goDuration(h.Interval ?? 0)}" "${goDuration(h.Timeout ?? 0)}" "${goDuration(h.StartPeriod ?? 0)}" ${goQuoteRune(h.Retries ?? 0)}}`;
}

function sortedRecord<T>(entries: Array<[string, T]>): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [k, v] of entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) out[k] = v;
  return out;
}

/**
 * Applies one config-only step. Returns a new state (the input is not modified) and the history
 * `created_by` Docker 20.10 writes for it. ARG only yields its history line (args are never committed).
 */
export function applyConfigStep(prev: ConfigState, step: ConfigStep): ConfigResult {
  const config: ContainerConfig = structuredClone(prev.config);
  const state: ConfigState = { config, author: prev.author, cmdSet: prev.cmdSet };
  const before = prev.config;
  switch (step.kind) {
    case 'ENV': {
      let env = config.Env ?? [];
      for (const [k, v] of step.pairs) {
        // Docker 20.10 commits through a container whose create checks each entry (opts.ValidateEnv)
        if (k === '') throw new BuildError('E_STEP', `invalid environment variable: =${v}`, { hint: 'the ENV name is empty: a variable in it may be unset' });
        env = setEnv(env, k, v);
      }
      config.Env = env;
      return { state, createdBy: nopCreatedBy(before, `ENV ${step.pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`) };
    }
    case 'LABEL': {
      const labels = { ...(config.Labels ?? {}) };
      for (const [k, v] of step.pairs) labels[k] = v;
      config.Labels = sortedRecord(Object.entries(labels));
      return { state, createdBy: nopCreatedBy(before, `LABEL ${step.pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`) };
    }
    case 'CMD': {
      // a bare `CMD` (shell form, no text) stores just the SHELL, as Docker 20.10 does
      const argv = step.cmd.form === 'shell' && step.cmd.command === '' ? shellOf(config) : argvOf(step.cmd, config);
      // `CMD []` too: Docker 20.10 stores (and inspect shows) an empty list; but only a non-empty
      // command line counts as set (dispatchCmd), so a later ENTRYPOINT still resets it
      config.Cmd = argv;
      if (step.cmd.form === 'shell' ? step.cmd.command !== '' : step.cmd.args.length > 0) state.cmdSet = true;
      return { state, createdBy: nopCreatedBy(before, `CMD ${goQuoteList(argv)}`) };
    }
    case 'ENTRYPOINT': {
      // a bare `ENTRYPOINT` (shell form, no text) clears it; Docker records an empty list
      const argv = step.cmd.form === 'shell' && step.cmd.command === '' ? [] : argvOf(step.cmd, config);
      if (argv.length > 0) config.Entrypoint = argv;
      else delete config.Entrypoint;
      if (!prev.cmdSet) delete config.Cmd;
      return { state, createdBy: nopCreatedBy(before, `ENTRYPOINT ${goQuoteList(argv)}`) };
    }
    case 'EXPOSE': {
      const ports: Array<[string, Record<string, never>]> = Object.entries(config.ExposedPorts ?? {});
      for (const spec of step.ports) for (const p of exposedPortsOf(spec)) ports.push([p, {}]);
      config.ExposedPorts = sortedRecord(ports);
      // the specs as expanded, in order: the parser sorted the raw words before expansion (expand.ts)
      return { state, createdBy: nopCreatedBy(before, `EXPOSE ${step.ports.join(' ')}`) };
    }
    case 'USER':
      config.User = step.user;
      return { state, createdBy: nopCreatedBy(before, `USER ${step.user}`) };
    case 'WORKDIR':
      config.WorkingDir = normalizeWorkdir(config.WorkingDir, step.path);
      return { state, createdBy: nopCreatedBy1(before, `WORKDIR ${config.WorkingDir}`) };
    case 'VOLUME': {
      const vols: Array<[string, Record<string, never>]> = Object.entries(config.Volumes ?? {});
      for (const v of step.paths) {
        // Docker 20.10 dispatchVolume: a path that expanded to nothing (VOLUME "" / $UNSET)
        if (v === '') throw new BuildError('E_STEP', 'VOLUME specified can not be an empty string', { hint: 'give each VOLUME a path; a variable in it may be unset' });
        vols.push([v, {}]);
      }
      config.Volumes = sortedRecord(vols);
      return { state, createdBy: nopCreatedBy(before, `VOLUME ${goList(step.paths)}`) };
    }
    case 'STOPSIGNAL':
      checkStopSignal(step.signal);
      config.StopSignal = step.signal;
      return { state, createdBy: nopCreatedBy(before, `STOPSIGNAL ${step.signal}`) };
    case 'SHELL':
      config.Shell = [...step.shell];
      // committed with the new shell already in place
      return { state, createdBy: nopCreatedBy(config, `SHELL ${goList(step.shell)}`) };
    case 'HEALTHCHECK': {
      const h: HealthConfig = { Test: [...(step.health.Test ?? [])] };
      if (step.health.Interval) h.Interval = step.health.Interval;
      if (step.health.Timeout) h.Timeout = step.health.Timeout;
      if (step.health.StartPeriod) h.StartPeriod = step.health.StartPeriod;
      if (step.health.StartInterval) h.StartInterval = step.health.StartInterval;
      if (step.health.Retries) h.Retries = step.health.Retries;
      const createdBy = nopCreatedBy(before, healthHistory(h));
      // Docker 20.10 commits through a container whose create merges the parent image's config
      // into the step's (daemon merge()), and the HealthConfig pointer is shared: options left at
      // zero take the previous HEALTHCHECK's values. The history line is written before that.
      const old = prev.config.Healthcheck;
      if (old) {
        for (const k of ['Interval', 'Timeout', 'StartPeriod', 'Retries'] as const) {
          if (!h[k] && old[k]) h[k] = old[k];
        }
      }
      config.Healthcheck = h;
      return { state, createdBy };
    }
    case 'ONBUILD':
      config.OnBuild = [...(config.OnBuild ?? []), step.trigger];
      return { state, createdBy: nopCreatedBy(before, `ONBUILD ${step.trigger}`) };
    case 'MAINTAINER':
      state.author = step.name;
      return { state, createdBy: nopCreatedBy(before, `MAINTAINER ${step.name}`) };
    case 'ARG': {
      const words = step.args.map((a) => (a.value === undefined ? a.name : `${a.name}=${a.value}`));
      return { state, createdBy: nopCreatedBy(before, `ARG ${words.join(' ')}`) };
    }
  }
}

/** The initial config of a `FROM scratch` stage: only `PATH` in Env, as the classic builder does. */
export function scratchConfig(): ContainerConfig {
  return { Env: [`PATH=${DEFAULT_PATH}`] };
}

/**
 * The config keys `docker image inspect .Config` shows with a value: null, `""`, empty arrays of
 * Cmd/Entrypoint/OnBuild and empty maps are dropped, as in the conformance cases.
 */
export function visibleConfig(config: ContainerConfig): ContainerConfig {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === null || v === undefined || v === '') continue;
    if (Array.isArray(v) && v.length === 0) continue;
    if (typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0 && k !== 'Healthcheck') continue;
    out[k] = v;
  }
  return out as ContainerConfig;
}
