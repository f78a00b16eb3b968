/** `tsbuild history IMAGE [--no-trunc] [-q] [--format json]`. */
import { imageHistory, type HistoryRow } from '@tsbuild/layer-store';
import { flagBool, flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { formatRows, GO_ZERO_TIME, humanSize, isPlainNotFound, notFoundName, openStore, rfc3339, shortID, since, table } from './image-output.js';

const HELP = `Usage: tsbuild history [OPTIONS] IMAGE

Show the history of an image. SIZE is the layer's content size (files and symlinks unpacked), as Docker's.

Options:
      --format string   json (one JSON object per line) or a Go template, e.g. '{{.CreatedBy}}'
  -H, --human           Print sizes and dates in human readable format (default true)
      --no-trunc        Don't truncate output
  -q, --quiet           Only show image IDs
`;

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'no-trunc', type: 'boolean' },
    { name: 'quiet', short: 'q', type: 'boolean' },
    { name: 'human', short: 'H', type: 'boolean' },
    { name: 'format', type: 'string' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length !== 1) throw new UsageError('"history" requires exactly 1 argument.', 'Usage: tsbuild history [OPTIONS] IMAGE');
  const noTrunc = flagBool(args, 'no-trunc');
  const human = !args.flags.has('human') || flagBool(args, 'human');
  let rows: HistoryRow[];
  try {
    rows = await imageHistory(await openStore(ctx), args.positionals[0]!);
  } catch (err) {
    if (!isPlainNotFound(err)) throw err;
    // dockerd: 'No such image: nosuch:latest' (the name as a tagged reference)
    ctx.stderr.write(`Error response: No such image: ${notFoundName(args.positionals[0]!)}\n`);
    return 1;
  }
  const now = new Date();
  const id = (r: HistoryRow): string => (r.id === undefined ? '<missing>' : noTrunc ? r.id : shortID(r.id));
  const createdBy = (r: HistoryRow): string => {
    const s = r.createdBy.replace(/\t/g, ' ');
    return noTrunc || [...s].length <= 45 ? s : `${[...s].slice(0, 44).join('')}…`;
  };
  // Docker without -H: the time as RFC 3339 in local time, whole seconds, under CREATED AT
  // an entry without a time is Go's zero time in Docker's API: "292 years ago", 0001-01-01T00:00:00Z
  const when = (r: HistoryRow): string => r.created ?? GO_ZERO_TIME;
  const created = (r: HistoryRow): string => (human ? since(when(r), now) : rfc3339(when(r)));
  const size = (r: HistoryRow): string => (human ? humanSize(r.size) : String(r.size));
  // as the docker CLI's NewHistoryFormat: none or `table` is the default table (or -q's IDs); any
  // other format wins over -q
  const source = flagString(args, 'format');
  const format = source === undefined || source === '' || source === 'table' ? undefined : source;
  if (flagBool(args, 'quiet') && format === undefined) {
    ctx.stdout.write(rows.map((r) => `${id(r)}\n`).join(''));
    return 0;
  }
  if (format !== undefined) {
    const objects = rows.map((r) => ({ Comment: r.comment, CreatedAt: rfc3339(when(r)), CreatedBy: createdBy(r), CreatedSince: since(when(r), now), ID: id(r), Size: size(r) }));
    ctx.stdout.write(formatRows(format, objects, { ID: 'IMAGE', CreatedSince: 'CREATED', CreatedAt: 'CREATED AT', CreatedBy: 'CREATED BY', Size: 'SIZE', Comment: 'COMMENT' }));
    return 0;
  }
  const header = ['IMAGE', human ? 'CREATED' : 'CREATED AT', 'CREATED BY', 'SIZE', 'COMMENT'];
  ctx.stdout.write(table([header, ...rows.map((r) => [id(r), created(r), createdBy(r), size(r), r.comment])]));
  return 0;
}
