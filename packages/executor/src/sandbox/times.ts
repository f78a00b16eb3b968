import { lstatSync, lutimesSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { TimeSlices } from '@tsbuild/layer-store';

/**
 * Truncates every sub-second time in a step's upper dir to the whole second, atime = mtime, before
 * the dir becomes its layer's snapshot (the next steps' lower dir). Docker 20.10 commits a step
 * through the layer's tar (pkg/archive's FileInfoHeader truncates mtimes to the second) and unpacks
 * that tar as the layer (Untar: atime = mtime when the tar has none), so a later RUN sees whole
 * seconds (checked against dockerd on Debian, hreal/probe2: `RUN touch /e` then `RUN stat /e`
 * shows 21:38:26.000000000; ours showed 21:38:24.239687349). The layer tar holds whole seconds
 * already: only what later steps see changes. Entries with whole-second mtimes are left alone (a
 * file linked from an earlier snapshot is shared with it). Synchronous calls in time slices.
 * @throws the abort reason when `signal` aborts.
 */
export async function truncateUpperTimes(upper: string, signal?: AbortSignal): Promise<void> {
  const slices = new TimeSlices(signal);
  const pending = [upper];
  truncateOne(upper);
  for (let d = pending.pop(); d !== undefined; d = pending.pop()) {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (slices.due()) await slices.yield();
      const p = path.join(d, e.name);
      if (e.isDirectory()) pending.push(p);
      truncateOne(p);
    }
  }
}

const NS_PER_S = 1_000_000_000n;

function truncateOne(p: string): void {
  const st = lstatSync(p, { bigint: true });
  if (st.mtimeNs % NS_PER_S === 0n) return;
  const s = Number(st.mtimeNs / NS_PER_S);
  lutimesSync(p, s, s);
}
