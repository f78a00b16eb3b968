import test from 'ava';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { build } from '../src/index.js';

const rows: Array<[string, string, RegExp | null]> = [
  ['a 1 MB RUN line', `FROM scratch\nRUN X=${'a'.repeat(1 << 20)}\n`, /^Dockerfile:2: failed to parse Dockerfile: dockerfile line greater than max allowed size of 65535$/],
  ['a line of 65,536 bytes in 3-byte characters', `FROM scratch\n\nLABEL x=${'€'.repeat(21843)}\n`, /^Dockerfile:3: .*max allowed size of 65535$/],
  // Docker takes any number of continuation lines: only a physical line counts
  ['5,000 short continuation lines', `FROM scratch\nLABEL a=b \\\n${' c=d \\\n'.repeat(5000)} e=f\n`, null],
];

for (const [name, text, message] of rows) {
  test(`Dockerfile line limit (Docker's 65535 bytes): ${name}`, async (t) => {
    const dir = await mkdtemp(path.join(tmpdir(), 'build-hostile-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const run = build({ store: path.join(dir, 'store'), contextDir: null, dockerfile: { text } });
    if (message === null) {
      await t.notThrowsAsync(run);
      return;
    }
    const err = await t.throwsAsync(run, { message } as never);
    t.regex((err as unknown as { hint: string }).hint, /continuations/);
    t.deepEqual(await readdir(path.join(dir, 'store', 'tmp')).catch(() => []), []);
  });
}
