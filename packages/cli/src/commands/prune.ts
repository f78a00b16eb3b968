/** `tsbuild prune [-f]`: remove dangling images and every blob and snapshot nothing refers to. */
import { prune } from '@tsbuild/layer-store';
import { flagBool, parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { humanSize, openStore } from './image-output.js';

/** Reads one line from stdin (the answer to a prompt); '' at end of input. */
async function readLine(ctx: CliContext): Promise<string> {
  let buf = '';
  for await (const chunk of ctx.stdin) {
    buf += String(chunk);
    const nl = buf.indexOf('\n');
    if (nl >= 0) return buf.slice(0, nl);
  }
  return buf;
}

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [
    { name: 'force', short: 'f', type: 'boolean' },
    { name: 'help', type: 'boolean' },
  ]);
  if (args.flags.has('help')) return void ctx.stdout.write('Usage: tsbuild prune [OPTIONS]\n\nRemove dangling images and unreferenced blobs and snapshots\n\nOptions:\n  -f, --force   Do not prompt for confirmation\n'), 0;
  if (args.positionals.length > 0) throw new UsageError('"prune" accepts no arguments.');
  if (!flagBool(args, 'force')) {
    ctx.stdout.write('WARNING! This will remove all dangling images and unreferenced data.\nAre you sure you want to continue? [y/N] ');
    const answer = (await readLine(ctx)).trim().toLowerCase();
    if (answer !== 'y' && answer !== 'yes') return 0;
  }
  const report = await prune(await openStore(ctx));
  if (report.imagesDeleted.length > 0) {
    ctx.stdout.write(`Deleted Images:\n${report.imagesDeleted.map((d) => `deleted: ${d}\n`).join('')}\n`);
  }
  if (report.blobsDeleted.length + report.snapshotsDeleted.length > 0) {
    ctx.stdout.write(`Deleted ${report.blobsDeleted.length} blobs and ${report.snapshotsDeleted.length} snapshots\n\n`);
  }
  ctx.stdout.write(`Total reclaimed space: ${humanSize(report.reclaimed)}\n`);
  return 0;
}
