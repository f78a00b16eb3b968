/** `tsbuild images [-q] [--digests] [--no-trunc] [--format json] [REPOSITORY[:TAG]]`. */
import { listImages, StoreError, type ImageRow, type Store } from '@tsbuild/layer-store';
import { flagBool, flagList, flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { createdAt, formatRows, GO_ZERO_TIME, humanSize, isPlainNotFound, isZeroTime, notFoundName, openStore, shortID, since, table } from './image-output.js';

const HELP = `Usage: tsbuild images [OPTIONS] [REPOSITORY[:TAG]]

List images. SIZE is the content size of the layers (files and symlinks unpacked), as Docker's.

Options:
  -a, --all             Show all images (accepted; there are no intermediate images)
      --digests         Show digests (recorded by push and pull)
  -f, --filter filter   Filter output based on conditions provided: dangling=true|false,
                        reference=PATTERN, label=KEY[=VALUE], before=IMAGE, since=IMAGE
      --format string   json (one JSON object per line, as '{{json .}}') or a Go template,
                        e.g. '{{.Repository}}:{{.Tag}}' or 'table {{.ID}}\t{{.Size}}'
      --no-trunc        Don't truncate output
  -q, --quiet           Only show image IDs
`;

/** Column names of `--format 'table …'`, as Docker's. */
const IMAGE_HEADERS = { ID: 'IMAGE ID', Repository: 'REPOSITORY', Tag: 'TAG', Digest: 'DIGEST', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', Size: 'SIZE', Containers: 'CONTAINERS', SharedSize: 'SHARED SIZE', UniqueSize: 'UNIQUE SIZE', VirtualSize: 'VIRTUAL SIZE' };

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'quiet', short: 'q', type: 'boolean' },
    { name: 'all', short: 'a', type: 'boolean' },
    { name: 'digests', type: 'boolean' },
    { name: 'no-trunc', type: 'boolean' },
    { name: 'format', type: 'string' },
    { name: 'filter', short: 'f', type: 'string', multiple: true },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length > 1) throw new UsageError('"images" requires at most 1 argument.');
  const noTrunc = flagBool(args, 'no-trunc');
  const now = new Date();
  const filters = parseFilters(flagList(args, 'filter'));
  // as Docker: `images REPO[:TAG]` is one more reference filter
  if (args.positionals[0] !== undefined) filters.reference = [...(filters.reference ?? []), args.positionals[0]];
  const store = await openStore(ctx);
  const quiet = flagBool(args, 'quiet');
  const format = imageFormat(flagString(args, 'format'), quiet, flagBool(args, 'digests'));
  // as Docker's CLI: a format that uses .Digest shows digests
  const digests = flagBool(args, 'digests') || (format !== undefined && /\{\{[^}]*\.Digest\b/.test(format));
  let listed: ImageRow[];
  try {
    listed = await applyFilters(store, await listImages(store), filters);
  } catch (err) {
    if (!isPlainNotFound(err)) throw err;
    // dockerd, for a before=/since= image that is not here: 'No such image: nosuch:latest'
    ctx.stderr.write(`Error response: No such image: ${notFoundName((err as { ref: string }).ref)}\n`);
    return 1;
  }
  // without digests, a repository that has only digests is one `<none>` row, a tag one row
  const seen = new Set<string>();
  const rows = digests
    ? listed
    : listed.filter((r) => {
        const key = `${r.id}\0${r.repository}\0${r.tag}`;
        return !seen.has(key) && seen.add(key);
      });
  const id = (r: ImageRow): string => (noTrunc ? r.id : shortID(r.id));
  if (quiet && format === undefined) {
    // one line per row, as Docker 20.10's CLI: an image with several tags is listed once per tag
    ctx.stdout.write(rows.map((r) => `${id(r)}\n`).join(''));
    return 0;
  }
  if (format !== undefined) {
    const objects = rows.map((r) => ({
          Containers: 'N/A',
          // Docker's API gives Go's zero time for a config without `created`; its CLI's
          // CreatedSince is "" for it (the table shows N/A), CreatedAt the zero time
          CreatedAt: createdAt(r.created ?? GO_ZERO_TIME),
          CreatedSince: isZeroTime(r.created) ? '' : since(r.created, now),
          Digest: digests ? r.digest : '',
          ID: id(r),
          Repository: r.repository,
          SharedSize: 'N/A',
          Size: humanSize(r.size),
          Tag: r.tag,
          UniqueSize: 'N/A',
          // the docker CLI's VirtualSize is units.HumanSize: 4 significant digits (Size has 3)
          VirtualSize: humanSize(r.size, 4),
    }));
    ctx.stdout.write(formatRows(format, objects, IMAGE_HEADERS));
    return 0;
  }
  const header = ['REPOSITORY', 'TAG', ...(digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
  const body = rows.map((r) => [r.repository, r.tag, ...(digests ? [r.digest] : []), id(r), isZeroTime(r.created) ? 'N/A' : since(r.created, now), humanSize(r.size)]);
  ctx.stdout.write(table([header, ...body]));
  return 0;
}

/**
 * The template `--format` stands for, as the docker CLI's NewImageFormat: none (or `table`) is the
 * default table, or the IDs with -q (undefined here); `raw` is Docker's key: value form; any other
 * format wins over -q, and a custom table gets a DIGEST column with --digests.
 */
function imageFormat(source: string | undefined, quiet: boolean, digests: boolean): string | undefined {
  if (source === undefined || source === '' || source === 'table') return undefined;
  if (source === 'raw') {
    if (quiet) return 'image_id: {{.ID}}';
    if (digests) return 'repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n';
    return 'repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n';
  }
  if (source.startsWith('table') && digests && !source.includes('{{.Digest}}')) return `${source}\t{{.Digest}}`;
  return source;
}

/** `--filter` values by key. */
export type ImageFilters = Partial<Record<'dangling' | 'reference' | 'label' | 'before' | 'since', string[]>>;

const FILTER_KEYS = new Set(['dangling', 'reference', 'label', 'before', 'since']);

/**
 * Parses `--filter key=value` flags as Docker 20.10's `images` takes them.
 * @throws StoreError E_FILTER with dockerd's "Invalid filter" wording for an unknown key or a bad dangling
 * value (`Invalid filter 'dangling=[maybe]'`); UsageError for a flag that is not name=value.
 */
export function parseFilters(flags: readonly string[]): ImageFilters {
  const out: ImageFilters = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq < 0) throw new UsageError(`bad format of filter (expected name=value)`);
    const key = f.slice(0, eq).toLowerCase();
    const value = f.slice(eq + 1);
    // dockerd checks the keys and values (the CLI only the name=value form): exit 1, not a usage error
    if (!FILTER_KEYS.has(key)) throw new StoreError(`Invalid filter '${key}'`, { code: 'E_FILTER', hint: 'images takes dangling, reference, label, before and since filters' });
    if (key === 'dangling' && !['true', 'false', '1', '0'].includes(value.toLowerCase())) throw new StoreError(`Invalid filter 'dangling=[${value}]'`, { code: 'E_FILTER', hint: 'dangling=true or dangling=false' });
    (out[key as keyof ImageFilters] ??= []).push(value);
  }
  if (new Set((out.dangling ?? []).map((v) => ['true', '1'].includes(v.toLowerCase()))).size > 1) throw new UsageError(`Invalid filter 'dangling'`, 'give dangling=true or dangling=false, not both');
  return out;
}

/**
 * Go's `path.Match` as a RegExp: `*` any run of characters but `/`, `?` one such character,
 * `[…]` a class (`[^…]` negated), `\x` the character x.
 */
export function globRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\' && i + 1 < pattern.length) re += escapeRe(pattern[++i]!);
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) throw new UsageError(`invalid reference filter "${pattern}": syntax error in pattern`);
      const body = pattern.slice(i + 1, end);
      const negated = body.startsWith('^');
      re += `[${negated ? '^/' : ''}${(negated ? body.slice(1) : body).replace(/[\\\]]/g, '\\$&')}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * Keeps the rows Docker 20.10 keeps: `reference` matches a tag's familiar `name:tag` or its
 * familiar name (reference.FamiliarMatch; untagged images never match), `dangling` untagged ones
 * or the others, `label` a key or key=value of the config, `before`/`since` images created
 * strictly before/after the named one.
 * @throws ImageNotFoundError for a before/since image that does not exist.
 */
export async function applyFilters(store: Store, rows: ImageRow[], filters: ImageFilters): Promise<ImageRow[]> {
  let out = rows;
  if (filters.dangling !== undefined) {
    const dangling = ['true', '1'].includes(filters.dangling[0]!.toLowerCase());
    // as Docker 20.10: an image no tag names is dangling, also when it has digest references
    // (pulled by digest: a `repo <none>` row); such an image shows with dangling=false too
    const tagged = new Set(out.filter((r) => r.tag !== '<none>').map((r) => r.id));
    out = out.filter((r) => (dangling ? !tagged.has(r.id) : r.repository !== '<none>'));
  }
  if (filters.reference !== undefined) {
    const patterns = filters.reference.map(globRegExp);
    out = out.filter((r) => r.repository !== '<none>' && patterns.some((p) => p.test(`${r.repository}:${r.tag}`) || p.test(r.repository)));
  }
  for (const l of filters.label ?? []) {
    const eq = l.indexOf('=');
    out = out.filter((r) => (eq < 0 ? l in r.labels : r.labels[l.slice(0, eq)] === l.slice(eq + 1)));
  }
  for (const [key, keep] of [['before', (t: number, ref: number) => t < ref], ['since', (t: number, ref: number) => t > ref]] as const) {
    for (const name of filters[key] ?? []) {
      const created = Date.parse((await store.resolveImage(name)).config.created ?? '');
      out = out.filter((r) => keep(Date.parse(r.created ?? ''), created));
    }
  }
  return out;
}
