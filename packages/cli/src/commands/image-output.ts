/**
 * Output helpers shared by the image commands: Docker's human sizes and durations, its tabwriter
 * tables, and atomic `-o` files.
 */
import { createWriteStream } from 'node:fs';
import { rename, stat, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { canonicalJSON, parseReference, Store, StoreError } from '@tsbuild/layer-store';
import { UsageError } from '../args.js';
import { Template, TemplateError } from '../template.js';
import type { CliContext } from '../context.js';

/**
 * How dockerd names an image it looked up by reference and did not find (history, tag's source,
 * images --filter before=/since=): the familiar name with its tag, `latest` added (`nosuch` is
 * `No such image: nosuch:latest`, `docker.io/library/a:1` is `a:1`); an image ID or a digest
 * reference as given. rmi, image inspect and save name it as given instead.
 */
export function notFoundName(name: string): string {
  if (/^sha256:[0-9a-f]{64}$/.test(name)) return name;
  try {
    const ref = parseReference(name);
    return ref.digest !== undefined ? name : ref.familiar();
  } catch {
    return name;
  }
}

/** Whether `err` is the store's "no such image" for a name that is a valid reference (not a bad name). */
export function isPlainNotFound(err: unknown): boolean {
  const e = err as { code?: string; cause?: { reason?: unknown } } | undefined;
  return e?.code === 'E_IMAGE_NOT_FOUND' && typeof e.cause?.reason !== 'string';
}

/** Opens the store at the context's root. */
export function openStore(ctx: CliContext): Promise<Store> {
  return Store.open(ctx.root);
}

const SIZE_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/**
 * Docker's `units.HumanSizeWithPrecision(size, precision)`: decimal units and Go's `%.*g` (3
 * significant digits: 1.98MB, what images SIZE and history SIZE print). `units.HumanSize`, which
 * system df, prune's "Total reclaimed space" and images' VirtualSize use, is precision 4 (1.984MB).
 * Go's %g switches to an exponent at 10^precision, so 999.95kB is "1e+03kB" in Docker too.
 */
export function humanSize(bytes: number, precision = 3): string {
  let size = bytes;
  let i = 0;
  while (size >= 1000 && i < SIZE_UNITS.length - 1) {
    size /= 1000;
    i++;
  }
  return `${goG(size, precision)}${SIZE_UNITS[i]}`;
}

/** Go's `fmt.Sprintf("%.*g", precision, x)` for x >= 0: shortest of fixed/exponent, no trailing zeros. */
function goG(x: number, precision: number): string {
  const s = x.toPrecision(precision);
  const e = s.indexOf('e');
  const trim = (m: string): string => (m.includes('.') ? m.replace(/0+$/, '').replace(/\.$/, '') : m);
  if (e < 0) return trim(s);
  const exp = Number(s.slice(e + 1));
  return `${trim(s.slice(0, e))}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** Docker's `units.HumanDuration` (go-units): "Less than a second", "About a minute", "3 weeks"… */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.round(ms / 3_600_000);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(ms / 3_600_000 / 24 / 365)} years`;
}

/** "N units ago" for a timestamp, relative to `now`; "N/A" without a timestamp. */
export function since(created: string | undefined, now: Date): string {
  if (!created) return 'N/A';
  const t = Date.parse(created);
  if (Number.isNaN(t)) return 'N/A';
  // Go's time.Sub saturates at the largest Duration (~292 years): the zero time is "292 years ago"
  return `${humanDuration(Math.min(now.getTime() - t, MAX_GO_DURATION_MS))} ago`;
}

/** Go's largest time.Duration (2^63-1 ns) in milliseconds. */
const MAX_GO_DURATION_MS = 9_223_372_036_854;

/** Go's zero time.Time, which Docker's API gives for an image or history entry without `created`. */
export const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/** Whether `created` is absent or Go's zero time (Docker's `time.IsZero`). */
export function isZeroTime(created: string | undefined): boolean {
  return !created || Date.parse(created) === Date.parse(GO_ZERO_TIME);
}

/**
 * Go's `time.RFC3339` of a timestamp in the local time zone (`2026-11-27T13:54:01Z` in UTC,
 * `2026-11-27T14:54:01+01:00` elsewhere), as `docker history -H=false` prints it; "" without one.
 */
export function rfc3339(created: string | undefined, offsetMinutes?: number): string {
  if (!created) return '';
  const d = new Date(created);
  if (Number.isNaN(d.getTime())) return '';
  const offset = offsetMinutes ?? -d.getTimezoneOffset();
  const local = new Date(d.getTime() + offset * 60_000).toISOString().slice(0, 19);
  if (offset === 0) return `${local}Z`;
  const abs = Math.abs(offset);
  return `${local}${offset < 0 ? '-' : '+'}${String(Math.trunc(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/** Docker's CreatedAt format: `2026-11-27 08:36:49 +0000 UTC`. */
export function createdAt(created: string | undefined): string {
  if (!created) return '';
  const d = new Date(created);
  if (Number.isNaN(d.getTime())) return '';
  return `${d.toISOString().slice(0, 19).replace('T', ' ')} +0000 UTC`;
}

/**
 * Lays out rows like Go's tabwriter as Docker configures it (minwidth 10, padding 3): every
 * column but the last padded to its widest cell plus 3, at least 10.
 */
export function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, [...c].length)));
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(Math.max(widths[i]! + 3, 10)))).join('') + '\n')
    .join('');
}

/** First 12 hex digits of an image ID (`sha256:` dropped), as Docker shows it. */
export function shortID(id: string): string {
  return id.replace(/^sha256:/, '').slice(0, 12);
}

/** True for `--format json` and Docker's `--format '{{json .}}'`; false for none or another template. */
export function isJSONFormat(format: string | undefined): boolean {
  return format !== undefined && (format === 'json' || /^\{\{\s*json\s+\.\s*\}\}$/.test(format));
}

/** Parses a `--format` template, turning a mistake into a usage error that names the flag. */
export function parseFormat(format: string): Template {
  try {
    return Template.parse(format);
  } catch (err) {
    if (err instanceof TemplateError) throw new UsageError(`invalid --format: ${err.message}`, err.hint);
    throw err;
  }
}

/** Runs a `--format` template on one value; a template that fails on it is a usage error. */
export function runFormat(tpl: Template, data: unknown): string {
  try {
    return tpl.execute(data);
  } catch (err) {
    if (err instanceof TemplateError) throw new UsageError(`--format: ${err.message}`, err.hint);
    throw err;
  }
}

/**
 * `--format` over rows, as Docker's list commands do: `json` (or `{{json .}}`) gives one JSON
 * object a line; a template gives one line per row, and with a leading `table ` the columns
 * (split on tabs) are laid out under a header made of each field's column name
 * (`{{.Repository}}` → REPOSITORY).
 */
export function formatRows(format: string, rows: readonly Record<string, unknown>[], headers: Readonly<Record<string, string>>): string {
  if (isJSONFormat(format)) return rows.map((r) => `${canonicalJSON(r)}\n`).join('');
  // as the docker CLI's formatter: 'table' is a prefix (table{{.ID}} too), and the rest is
  // trimmed of spaces
  const isTable = format.startsWith('table');
  const body = (isTable ? format.slice('table'.length) : format).replace(/^ +| +$/g, '');
  const tpl = parseFormat(body.replace(/\\t/g, '\t').replace(/\\n/g, '\n'));
  const lines = rows.map((r) => runFormat(tpl, r));
  if (!isTable) return lines.map((l) => `${l}\n`).join('');
  const header = body.replace(/\\t/g, '\t').replace(/\{\{-?\s*\.(\w+)\s*-?\}\}/g, (_m, f: string) => `{{"${headers[f] ?? f.toUpperCase()}"}}`);
  const head = runFormat(parseFormat(header), {});
  return table([head, ...lines].map((l) => l.split('\t')));
}

/**
 * Runs `write` against a temp file beside `path`, then renames it into place; on failure the temp
 * file is removed and `path` is untouched. `write` must end the stream it is given.
 */
export async function writeFileAtomically(path: string, write: (out: Writable) => Promise<void>): Promise<void> {
  const existing = await stat(path).catch(() => undefined);
  if (existing !== undefined && !existing.isFile() && !existing.isDirectory()) {
    // a device or a pipe (-o /dev/null, -o /dev/stdout, a FIFO): write into it; renaming a temp
    // file over it would replace the device node with a regular file
    const out = createWriteStream(path, { flags: 'w' });
    const closed = new Promise<void>((resolve) => out.once('close', () => resolve()));
    try {
      await write(out);
    } catch (err) {
      out.destroy();
      throw err;
    } finally {
      await closed;
    }
    return;
  }
  // dockerd's CLI checks the directory first, with this wording
  const dir = dirname(path);
  if (!(await stat(dir).catch(() => undefined))?.isDirectory()) {
    throw new StoreError(`invalid output path: directory "${dir}" does not exist`, { code: 'E_OUTPUT', hint: 'create the directory first, or give another -o path' });
  }
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const out = createWriteStream(tmp, { flags: 'wx' });
  const closed = new Promise<void>((resolve) => out.once('close', () => resolve()));
  try {
    await write(out);
    await closed;
    await rename(tmp, path);
  } catch (err) {
    out.destroy();
    await closed;
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Where a command writes its archive: the `-o` file (atomically), or stdout when it is not a
 * terminal. @throws UsageError (Docker's "cowardly refusing") when stdout is a terminal.
 */
export async function writeOutput(ctx: CliContext, output: string | undefined, what: string, write: (out: Writable) => Promise<void>): Promise<void> {
  if (output !== undefined && output !== '-') {
    await writeFileAtomically(output, write);
    return;
  }
  if (ctx.stdout.isTTY) {
    throw new UsageError(`cowardly refusing to ${what} to a terminal. Use the -o flag or redirect`);
  }
  await write(ctx.stdout);
}

/** What garbage collection (prune, rmi) says on stderr when running builds hold the store's content. */
export function waitingForBuilds(ctx: CliContext): () => void {
  return () => void ctx.stderr.write('waiting for running builds to finish (they use the content garbage collection would remove)\n');
}
