/**
 * Validation helpers with Docker's rules, shared by the parser, checkDockerfile and the
 * executor. Each throws a plain `Error` subclass-free message via {@link ValueError};
 * callers attach the location.
 */
import type { RunMount, RunMountType } from './types.js';

/** A value that Docker rejects; `message` is Docker's wording. Callers add the location. */
export class ValueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ValueError';
  }
}

const SIGNALS: Record<string, number> = {
  ABRT: 6, ALRM: 14, BUS: 7, CHLD: 17, CLD: 17, CONT: 18, FPE: 8, HUP: 1, ILL: 4, INT: 2, IO: 29, IOT: 6,
  KILL: 9, PIPE: 13, POLL: 29, PROF: 27, PWR: 30, QUIT: 3, SEGV: 11, STKFLT: 16, STOP: 19, SYS: 31, TERM: 15,
  TRAP: 5, TSTP: 20, TTIN: 21, TTOU: 22, URG: 23, USR1: 10, USR2: 12, VTALRM: 26, WINCH: 28, XCPU: 24, XFSZ: 25,
  RTMIN: 34, RTMAX: 64,
};
for (let i = 1; i <= 15; i++) {
  SIGNALS[`RTMIN+${i}`] = 34 + i;
  SIGNALS[`RTMAX-${i}`] = 64 - i;
}

/** Go's strconv.Atoi (optional sign, decimal digits, fits in int64 here: safe integers). */
function goAtoi(s: string): number | undefined {
  if (!/^[+-]?[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return Number.isSafeInteger(n) ? n : undefined;
}

/**
 * Parses a STOPSIGNAL value like Docker (signal.ParseSignal): a number other than 0, or a
 * Linux signal name with or without `SIG`, any case. Returns the signal number.
 * @throws ValueError `Invalid signal: X`
 */
export function parseSignal(raw: string): number {
  const n = goAtoi(raw);
  if (n !== undefined) {
    if (n === 0) throw new ValueError(`Invalid signal: ${raw}`);
    return n;
  }
  const upper = raw.toUpperCase();
  const name = upper.startsWith('SIG') ? upper.slice(3) : upper;
  const sig = Object.prototype.hasOwnProperty.call(SIGNALS, name) ? SIGNALS[name] : undefined;
  if (sig === undefined) throw new ValueError(`Invalid signal: ${raw}`);
  return sig;
}

/** Go's strconv.ParseUint(s, 10, 16). */
function parsePort(s: string): number | undefined {
  if (!/^[0-9]+$/.test(s)) return undefined;
  const n = Number(s);
  return n <= 0xffff ? n : undefined;
}

function parsePortRange(ports: string): [number, number] {
  if (ports === '') throw new ValueError('Empty string specified for ports.');
  if (!ports.includes('-')) {
    const p = parsePort(ports);
    if (p === undefined) throw new ValueError(`invalid port ${ports}`);
    return [p, p];
  }
  const parts = ports.split('-');
  const start = parsePort(parts[0]!);
  const end = parsePort(parts[1]!);
  if (start === undefined || end === undefined) throw new ValueError(`invalid port range ${ports}`);
  if (end < start) throw new ValueError(`Invalid range specified for the Port: ${ports}`);
  return [start, end];
}

/**
 * Parses one EXPOSE word like Docker (nat.ParsePortSpec): `[ip:][hostPort:]port[-end][/proto]`,
 * proto tcp/udp/sctp in any case. Returns the exposed port keys (`80/tcp`), ranges expanded.
 * @throws ValueError with Docker's message
 */
export function parsePortSpec(raw: string): string[] {
  const parts = raw.split(':');
  const n = parts.length;
  let containerPort = parts[n - 1]!;
  const hostPort = n >= 2 ? parts[n - 2]! : '';
  const rawIP = n >= 3 ? parts.slice(0, n - 2).join(':') : '';
  let proto = '';
  const pp = containerPort.split('/');
  if (containerPort.length === 0 || pp[0]!.length === 0) {
    proto = '';
    containerPort = '';
  } else if (pp.length === 1) {
    proto = 'tcp';
  } else if (pp[1]!.length === 0) {
    proto = 'tcp';
    containerPort = pp[0]!;
  } else {
    proto = pp[1]!;
    containerPort = pp[0]!;
  }
  let ip = rawIP;
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  if (ip !== '' && !isIP(ip)) throw new ValueError(`Invalid ip address: ${ip}`);
  if (containerPort === '') throw new ValueError(`No port specified: ${raw}<empty>`);
  let start: number, end: number;
  try {
    [start, end] = parsePortRange(containerPort);
  } catch {
    throw new ValueError(`Invalid containerPort: ${containerPort}`);
  }
  if (hostPort !== '') {
    let hs: number, he: number;
    try {
      [hs, he] = parsePortRange(hostPort);
    } catch {
      throw new ValueError(`Invalid hostPort: ${hostPort}`);
    }
    if (end - start !== he - hs && end !== start) {
      throw new ValueError(`Invalid ranges specified for container and host Ports: ${containerPort} and ${hostPort}`);
    }
  }
  const lower = proto.toLowerCase();
  if (lower !== 'tcp' && lower !== 'udp' && lower !== 'sctp') throw new ValueError(`Invalid proto: ${proto}`);
  const out: string[] = [];
  for (let p = start; p <= end; p++) out.push(`${p}/${lower}`);
  return out;
}

function isIP(s: string): boolean {
  if (/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(s)) return s.split('.').every((o) => Number(o) <= 255);
  return /^[0-9a-fA-F:.]+$/.test(s) && s.includes(':');
}

const UNIT_NS: Record<string, number> = {
  ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9,
};

/**
 * Parses a duration like Go's time.ParseDuration (`1h30m`, `1.5s`, `500ms`, `0`).
 * Returns nanoseconds (a JS number; exact below 2^53 ns ≈ 104 days).
 * @throws ValueError `time: invalid duration "x"`, `time: missing unit in duration "1"`,
 * `time: unknown unit "d" in duration "1d"` (Go's messages)
 */
export function parseDuration(raw: string): number {
  let s = raw;
  let neg = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    neg = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') throw new ValueError(`time: invalid duration "${raw}"`);
  // Go's time.ParseDuration in uint64 arithmetic: overflow past 1<<63 is an invalid duration, and a
  // fraction adds float64(f) * (float64(unit) / scale), truncated (1.0000000006s is 1s)
  const MAX = 1n << 63n;
  let total = 0n;
  const re = /^([0-9]*)(?:\.([0-9]*))?([^0-9.]*)/u;
  while (s !== '') {
    const m = re.exec(s);
    if (!m || (m[1] === '' && (m[2] === undefined || m[2] === ''))) throw new ValueError(`time: invalid duration "${raw}"`);
    const unitText = m[3]!;
    if (unitText === '') throw new ValueError(`time: missing unit in duration "${raw}"`);
    const unitNs = UNIT_NS[unitText];
    if (unitNs === undefined) {
      // Go reads the unit up to the next digit or '.', so "5sx" has unit "sx".
      throw new ValueError(`time: unknown unit "${unitText}" in duration "${raw}"`);
    }
    const unit = BigInt(unitNs);
    let v = m[1] === '' ? 0n : BigInt(m[1]!);
    if (v > MAX / unit) throw new ValueError(`time: invalid duration "${raw}"`);
    v *= unit;
    const [f, scale] = leadingFraction(m[2] ?? '');
    if (f > 0n) {
      v += BigInt(Math.trunc(Number(f) * (unitNs / scale)));
      if (v > MAX) throw new ValueError(`time: invalid duration "${raw}"`);
    }
    total += v;
    if (total > MAX) throw new ValueError(`time: invalid duration "${raw}"`);
    s = s.slice(m[0].length);
  }
  if (!neg && total > MAX - 1n) throw new ValueError(`time: invalid duration "${raw}"`);
  return neg ? -Number(total) : Number(total);
}

/** Go's time.leadingFraction: the digits up to where the value would pass 1<<63, and 10^count. */
function leadingFraction(digits: string): [bigint, number] {
  let x = 0n;
  let scale = 1;
  for (const c of digits) {
    if (x > ((1n << 63n) - 1n) / 10n) break;
    const y = x * 10n + BigInt(c.charCodeAt(0) - 48);
    if (y > 1n << 63n) break;
    x = y;
    scale *= 10;
  }
  return [x, scale];
}

/** Docker's container.MinimumDuration for HEALTHCHECK intervals: 1ms. */
export const MINIMUM_HEALTHCHECK_DURATION_NS = 1e6;

/** Go's strconv.ParseBool. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

/** Go's encoding/csv reading of one record (quotes with "" escapes). */
function parseCsvRecord(s: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new ValueError('failed to parse csv mounts: extraneous or missing " in quoted-field');
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ',') throw new ValueError('failed to parse csv mounts: extraneous or missing " in quoted-field');
    } else {
      const j = s.indexOf(',', i);
      field = j < 0 ? s.slice(i) : s.slice(i, j);
      if (field.includes('"')) throw new ValueError('failed to parse csv mounts: bare " in non-quoted-field');
      i = j < 0 ? s.length : j;
    }
    out.push(field);
    if (i >= s.length) return out;
    i++; // ','
  }
}

/** docker/go-units RAMInBytes. */
function ramInBytes(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kKmMgGtTpP]?)[iI]?[bB]?$/.exec(s);
  if (!m) return undefined;
  const mult: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4, p: 1024 ** 5 };
  return Math.trunc(Number(m[1]) * mult[m[2]!.toLowerCase()]!);
}

const MOUNT_TYPES: readonly RunMountType[] = ['bind', 'cache', 'tmpfs', 'secret', 'ssh'];

/**
 * Parses a `RUN --mount` value (buildkit's parseMount rules, with `env=` for secrets).
 * @throws ValueError with buildkit's message
 */
export function parseMount(spec: string, expand?: (value: string) => string): RunMount {
  const fields = parseCsvRecord(spec);
  let type: RunMountType = 'bind';
  let roAuto = true;
  let readonly: boolean | undefined;
  const m: { -readonly [K in keyof RunMount]?: RunMount[K] } = {};
  for (const field of fields) {
    const eq = field.indexOf('=');
    const key = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const value = eq < 0 ? '' : expand ? expand(field.slice(eq + 1)) : field.slice(eq + 1);
    if (eq < 0) {
      if (key === 'readonly' || key === 'ro') {
        readonly = true;
        roAuto = false;
      } else if (key === 'readwrite' || key === 'rw') {
        readonly = false;
        roAuto = false;
      } else if (key === 'required') {
        if (type !== 'secret' && type !== 'ssh') throw new ValueError(`unexpected key '${key}' for mount type '${type}'`);
        m.required = true;
      } else {
        throw new ValueError(`invalid field '${field}' must be a key=value pair`);
      }
      continue;
    }
    const bool = (): boolean => {
      const b = parseGoBool(value);
      if (b === undefined) throw new ValueError(`invalid value for ${key}: ${value}`);
      return b;
    };
    const uint = (radix: 8 | 10, what: string): number => {
      const ok = radix === 8 ? /^[0-7]+$/.test(value) : /^[0-9]+$/.test(value);
      const n = ok ? parseInt(value, radix) : NaN;
      if (!ok || n > 0xffffffff) throw new ValueError(`invalid value ${value} for ${what}`);
      return n;
    };
    switch (key) {
      case 'type': {
        const t = value.toLowerCase() as RunMountType;
        if (!MOUNT_TYPES.includes(t)) throw new ValueError(`unsupported mount type "${value}"`);
        type = t;
        break;
      }
      case 'from': m.from = value; break;
      case 'source': case 'src': m.source = value; break;
      case 'target': case 'dst': case 'destination': m.target = value; break;
      case 'readonly': case 'ro': readonly = bool(); roAuto = false; break;
      case 'readwrite': case 'rw': readonly = !bool(); roAuto = false; break;
      case 'required':
        if (type !== 'secret' && type !== 'ssh') throw new ValueError(`unexpected key '${key}' for mount type '${type}'`);
        m.required = bool();
        break;
      case 'size': {
        if (type !== 'tmpfs') throw new ValueError(`unexpected key '${key}' for mount type '${type}'`);
        const size = ramInBytes(value);
        if (size === undefined) throw new ValueError(`invalid value for ${key}: ${value}`);
        m.size = size;
        break;
      }
      case 'id': m.id = value; break;
      case 'env':
        if (type !== 'secret') throw new ValueError(`unexpected key '${key}' for mount type '${type}'`);
        m.env = value;
        break;
      case 'sharing': {
        const v = value.toLowerCase();
        if (v !== 'shared' && v !== 'private' && v !== 'locked') throw new ValueError(`unsupported sharing value "${value}"`);
        m.sharing = v;
        break;
      }
      case 'mode': m.mode = uint(8, 'mode'); break;
      case 'uid': m.uid = uint(10, 'uid'); break;
      case 'gid': m.gid = uint(10, 'gid'); break;
      default:
        throw new ValueError(`unexpected key '${key}' in '${field}'`);
    }
  }
  const fileInfoAllowed = type === 'secret' || type === 'ssh' || type === 'cache';
  if (!fileInfoAllowed) {
    if (m.mode !== undefined) throw new ValueError(`mode not allowed for "${type}" type mounts`);
    if (m.uid !== undefined) throw new ValueError(`uid not allowed for "${type}" type mounts`);
    if (m.gid !== undefined) throw new ValueError(`gid not allowed for "${type}" type mounts`);
  }
  if (roAuto) readonly = !(type === 'cache' || type === 'tmpfs');
  if (type === 'secret') {
    if (m.from !== undefined && m.from !== '') throw new ValueError('secret mount should not have a from');
    if (m.sharing !== undefined) throw new ValueError('secret mount should not define sharing');
    if (!m.source && !m.target && !m.id && !m.env) throw new ValueError('invalid secret mount. one of source, target required');
    if (m.source && m.id) throw new ValueError("both source and id can't be set");
  }
  if (m.sharing !== undefined && type !== 'cache') throw new ValueError(`invalid cache sharing set for ${type} mount`);
  return { ...m, type, readonly: readonly ?? false, raw: spec };
}

const STAGE_NAME = /^[a-z][a-z0-9-_.]*$/;

/** True when `name` (already lower-cased) is a valid stage name (`^[a-z][a-z0-9-_.]*$`). */
export function isValidStageName(name: string): boolean {
  return STAGE_NAME.test(name);
}
