/**
 * Golden image summaries: each `fixtures/images/<case>/` holds a Dockerfile, its context files and
 * `summary.txt` (config, history, files against the busybox base). `UPDATE_GOLDEN=1` rewrites them.
 * The summaries were reviewed by hand and, for the cases in build-docker.test.ts, checked against
 * Docker 20.10's classic builder.
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { build } from '../src/index.js';
import { fileLines, fixturesDir, flattenImage, imageSummary, sharedBusyboxStore, tempDir } from './helpers/images.js';

const shared = sharedBusyboxStore();
test.after.always(() => shared.remove());

let baseLines: Promise<string[]> | undefined;
async function busyboxLines(): Promise<string[]> {
  baseLines ??= (async () => {
    const { store } = await shared.get();
    const dir = await tempDir('golden-base');
    try {
      return await fileLines(await flattenImage(store, 'busybox:latest', dir));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  })();
  return baseLines;
}

const cases = readdirSync(fixturesDir).sort();

for (const name of cases) {
  test(`golden image: ${name}`, async (t) => {
    const { store } = await shared.get();
    const caseDir = path.join(fixturesDir, name);
    const tmp = await tempDir(`golden-${name}`);
    t.teardown(() => rm(tmp, { recursive: true, force: true }));
    const tag = `golden-${name}:latest`;
    await build({ store, contextDir: caseDir, dockerfile: { path: path.join(caseDir, 'Dockerfile') }, tags: [tag], sourceDateEpoch: 0, isolation: 'oci' });
    const actual = await imageSummary(store, tag, tmp, await busyboxLines(), 1);
    const goldenFile = path.join(caseDir, 'summary.txt');
    if (process.env['UPDATE_GOLDEN'] === '1') {
      await writeFile(goldenFile, actual);
      t.log(`updated ${goldenFile}`);
    }
    t.is(actual, await readFile(goldenFile, 'utf8'));
  });
}
