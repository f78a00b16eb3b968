/** `tsbuild images [-q] [--digests] [--no-trunc] [--format json] [REPOSITORY[:TAG]]`. */
import { listImages, parseReference, type ImageRow } from '@tsbuild/layer-store';
import { flagBool, flagString, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { createdAt, formatRows, humanSize, openStore, shortID, since, table } from './image-output.js';

const HELP = `Usage: tsbuild images [OPTIONS] [REPOSITORY[:TAG]]

List images. SIZE is what the image takes in the store (compressed layers).

Options:
  -a, --all             Show all images (accepted; there are no intermediate images)
      --digests         Show digests (the manifest digest)
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
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write(HELP), 0;
  if (args.positionals.length > 1) throw new UsageError('"images" requires at most 1 argument.');
  const noTrunc = flagBool(args, 'no-trunc');
  const now = new Date();
  let rows = await listImages(await openStore(ctx));
  const filter = args.positionals[0];
  if (filter !== undefined) rows = rows.filter(matches(filter));
  const id = (r: ImageRow): string => (noTrunc ? r.id : shortID(r.id));
  if (flagBool(args, 'quiet')) {
    ctx.stdout.write([...new Set(rows.map(id))].map((s) => `${s}\n`).join(''));
    return 0;
  }
  const format = flagString(args, 'format');
  if (format !== undefined) {
    const objects = rows.map((r) => ({
          Containers: 'N/A',
          CreatedAt: createdAt(r.created),
          CreatedSince: since(r.created, now),
          Digest: r.digest,
          ID: id(r),
          Repository: r.repository,
          SharedSize: 'N/A',
          Size: humanSize(r.size),
          Tag: r.tag,
          UniqueSize: 'N/A',
          VirtualSize: humanSize(r.size),
    }));
    ctx.stdout.write(formatRows(format, objects, IMAGE_HEADERS));
    return 0;
  }
  const digests = flagBool(args, 'digests');
  const header = ['REPOSITORY', 'TAG', ...(digests ? ['DIGEST'] : []), 'IMAGE ID', 'CREATED', 'SIZE'];
  const body = rows.map((r) => [r.repository, r.tag, ...(digests ? [r.digest] : []), id(r), since(r.created, now), humanSize(r.size)]);
  ctx.stdout.write(table([header, ...body]));
  return 0;
}

/** Docker's positional filter: a repository name, optionally with a tag. */
function matches(filter: string): (r: ImageRow) => boolean {
  const hasTag = /:[^/]+$/.test(filter);
  const ref = parseReference(filter);
  return (r) => r.repository !== '<none>' && parseReference(`${r.repository}:${r.tag}`).name === ref.name && (!hasTag || r.tag === ref.tag);
}
