/**
 * Docker-style command-line flag parsing: `-t x`, `-tx`, `--tag x`, `--tag=x`, repeated flags,
 * boolean flags (`-q`, `--no-cache`, `--no-cache=false`), `--` ends flags, `-` is a positional.
 */
export interface FlagSpec {
  /** long name without dashes, e.g. `tag` */
  name: string;
  /** one-letter alias, e.g. `t` */
  short?: string;
  /** boolean flags take no value */
  type: 'string' | 'boolean';
  /** may be given several times (values collected in order) */
  multiple?: boolean;
  /** one line for `--help` */
  help?: string;
}

export interface ParsedArgs {
  flags: Map<string, string[]>;
  positionals: string[];
}

/** Thrown for unknown flags or missing values; the CLI prints it as a usage error (exit 125 like Docker). */
export class UsageError extends Error {
  readonly code = 'E_USAGE';
  constructor(message: string, readonly hint?: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * Thrown by {@link parseArgs} for `--help`/`-h` when the command declares no such flag; the CLI
 * prints {@link helpText} to stdout and exits 0, as Docker does.
 */
export class HelpRequested extends Error {
  readonly code = 'E_HELP';
  constructor(readonly specs: readonly FlagSpec[]) {
    super('help requested');
    this.name = 'HelpRequested';
  }
}

/** `Options:` lines for a command's flags, Docker's layout (`-t, --tag string   Name and tag`). */
export function helpText(command: string, specs: readonly FlagSpec[]): string {
  const rows = specs.map((s) => [`${s.short ? `-${s.short}, ` : '    '}--${s.name}${s.type === 'string' ? (s.multiple ? ' list' : ' string') : ''}`, s.help ?? '']);
  const width = Math.max(0, ...rows.map((r) => (r[0] as string).length));
  const lines = rows.map(([f, h]) => `  ${(f as string).padEnd(width)}   ${h}`.trimEnd());
  return `Usage: tsbuild ${command} [OPTIONS]${command === 'build' ? ' PATH | -' : ''}\n${lines.length > 0 ? `\nOptions:\n${lines.join('\n')}\n` : ''}`;
}

/** Parses argv against specs. Throws UsageError on unknown flags or a missing value. */
export function parseArgs(argv: readonly string[], specs: readonly FlagSpec[]): ParsedArgs {
  const flags = new Map<string, string[]>();
  const positionals: string[] = [];
  const byLong = new Map(specs.map((s) => [s.name, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const put = (spec: FlagSpec, value: string): void => {
    const prev = flags.get(spec.name) ?? [];
    flags.set(spec.name, spec.multiple ? [...prev, value] : [value]);
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg.startsWith('--')) {
      const eq = arg.indexOf('=');
      const name = eq < 0 ? arg.slice(2) : arg.slice(2, eq);
      const spec = byLong.get(name);
      if (!spec && name === 'help') throw new HelpRequested(specs);
      if (!spec) throw new UsageError(`unknown flag: --${name}`, 'see --help for the flags this command takes');
      if (spec.type === 'boolean') {
        put(spec, eq < 0 ? 'true' : arg.slice(eq + 1));
      } else if (eq >= 0) {
        put(spec, arg.slice(eq + 1));
      } else {
        if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: --${name}`);
        put(spec, argv[++i] as string);
      }
      continue;
    }
    if (arg.startsWith('-') && arg !== '-') {
      // a cluster of short flags: -qa, or -tvalue / -t value / -t=value
      for (let j = 1; j < arg.length; j++) {
        const c = arg[j] as string;
        const spec = byShort.get(c);
        if (!spec && c === 'h' && arg === '-h') throw new HelpRequested(specs);
        if (!spec) throw new UsageError(`unknown shorthand flag: '${c}' in ${arg}`, 'see --help for the flags this command takes');
        if (spec.type === 'boolean') {
          // pflag: -H=false gives a boolean shorthand its value
          if (arg[j + 1] === '=') {
            put(spec, arg.slice(j + 2));
            break;
          }
          put(spec, 'true');
          continue;
        }
        let rest = arg.slice(j + 1);
        if (rest.startsWith('=')) rest = rest.slice(1);
        if (rest !== '') put(spec, rest);
        else {
          if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: '${c}' in -${c}`);
          put(spec, argv[++i] as string);
        }
        break;
      }
      continue;
    }
    positionals.push(arg);
  }
  return { flags, positionals };
}

/** The last value of a string flag, or undefined. */
export function flagString(args: ParsedArgs, name: string): string | undefined {
  const v = args.flags.get(name);
  return v === undefined ? undefined : v[v.length - 1];
}

/** All values of a repeatable flag (empty when absent). */
export function flagList(args: ParsedArgs, name: string): string[] {
  return args.flags.get(name) ?? [];
}

/** A boolean flag: true when given bare or `=true`/`=1`. */
export function flagBool(args: ParsedArgs, name: string): boolean {
  const v = flagString(args, name);
  if (v === undefined) return false;
  if (['true', '1', ''].includes(v)) return true;
  if (['false', '0'].includes(v)) return false;
  throw new UsageError(`invalid value "${v}" for flag --${name}: expected true or false`);
}
