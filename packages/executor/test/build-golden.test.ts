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
import { randomBytes } from 'node:crypto';
import { build } from '../src/index.js';
import { configLines, fileLines, filesAgainstBase, fixturesDir, flattenImage, historyLines, isDockerArtefact, summaryText, sharedBusyboxStore, tempDir, unpackTar } from './helpers/images.js';
import { dockerAvailable, dockerSkipped, DOCKER_MISSING, Oracle } from './helpers/docker.js';

const shared = sharedBusyboxStore();
const oracle = new Oracle(randomBytes(4).toString('hex'));
test.after.always(async () => {
  await oracle.cleanup();
  await shared.remove();
});

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
/** Cases Docker's classic builder cannot build (BuildKit-only syntax), so no differential test. */
const buildkitOnly = new Set(['copy-chmod-heredoc']);

/** Each case is built once and shared by its golden and differential tests. */
const built = new Map<string, Promise<string>>();
function buildCase(name: string): Promise<string> {
  let p = built.get(name);
  if (!p) {
    p = (async () => {
      const { store } = await shared.get();
      const caseDir = path.join(fixturesDir, name);
      const tag = `golden-${name}:latest`;
      await build({ store, contextDir: caseDir, dockerfile: { path: path.join(caseDir, 'Dockerfile') }, tags: [tag], sourceDateEpoch: 0, isolation: 'oci' });
      return tag;
    })();
    built.set(name, p);
  }
  return p;
}

let dockerBase: Promise<void> | undefined;

/** The flattened file lines of a built case, computed once for its golden and differential tests. */
const flattened = new Map<string, Promise<string[]>>();
function caseFileLines(name: string, under: string): Promise<string[]> {
  let p = flattened.get(name);
  if (!p) {
    p = (async () => {
      const { store } = await shared.get();
      return fileLines(await flattenImage(store, await buildCase(name), under));
    })();
    flattened.set(name, p);
  }
  return p;
}

for (const name of cases) {
  test(`golden image: ${name}`, async (t) => {
    const { store } = await shared.get();
    const caseDir = path.join(fixturesDir, name);
    const tmp = await tempDir(`golden-${name}`);
    t.teardown(() => rm(tmp, { recursive: true, force: true }));
    const tag = await buildCase(name);
    const img = await store.resolveImage(tag);
    const actual = summaryText(
      (img.config.config ?? {}) as Record<string, unknown>,
      historyLines((img.config.history ?? []).slice(1)),
      filesAgainstBase(await caseFileLines(name, tmp), await busyboxLines()),
    );
    const goldenFile = path.join(caseDir, 'summary.txt');
    if (process.env['UPDATE_GOLDEN'] === '1') {
      await writeFile(goldenFile, actual);
      t.log(`updated ${goldenFile}`);
    }
    t.is(actual, await readFile(goldenFile, 'utf8'));
  });
}

for (const name of cases.filter((c) => !buildkitOnly.has(c))) {
  (dockerSkipped ? test.skip : test)(`differential vs Docker 20.10 classic builder: ${name}`, async (t) => {
    if (!dockerAvailable()) {
      t.fail(DOCKER_MISSING);
      return;
    }
    const bb = await shared.get();
    const tmp = await tempDir(`diff-${name}`);
    t.teardown(() => rm(tmp, { recursive: true, force: true }));
    dockerBase ??= oracle.importBase(bb.rootfs);
    await dockerBase;
    const [tag, theirs] = await Promise.all([buildCase(name), oracle.build(path.join(fixturesDir, name), tmp)]);
    const base = await busyboxLines();
    const ours = await bb.store.resolveImage(tag);
    t.deepEqual(configLines((ours.config.config ?? {}) as Record<string, unknown>), configLines((theirs.config.config ?? {}) as Record<string, unknown>), 'config');
    // the COPY/ADD source hashes too: ours are Docker's tarsum-based ones
    t.deepEqual(historyLines(ours.config.history), historyLines(theirs.config.history), 'history');
    const ourFiles = filesAgainstBase(await caseFileLines(name, tmp), base);
    const theirFiles = filesAgainstBase(await fileLines(await unpackTar(theirs.exportTar, tmp)), base).filter((l) => !isDockerArtefact(l.replace(/^deleted /, '').split(' ')[0] as string));
    t.deepEqual(ourFiles, theirFiles, 'files');
  });
}
