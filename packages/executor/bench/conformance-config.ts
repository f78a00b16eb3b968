/**
 * Builds every conformance case with a `config` key (FROM scratch, config-only) into a temp store
 * and compares the image's `.Config` keys with what Docker 20.10 produced.
 * Usage: node packages/executor/dist/bench/conformance-config.js [DIR]
 */
import { readFile, readdir, mkdtemp, rm } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { tmpdir } from 'node:os';
import { isDeepStrictEqual } from 'node:util';
import { Store } from '@tsbuild/layer-store';
import { build } from '../src/build/build.js';
import { visibleConfig } from '../src/build/config.js';

const KEYS = ['Env', 'Cmd', 'Entrypoint', 'WorkingDir', 'User', 'ExposedPorts', 'Volumes', 'Labels', 'Shell', 'Healthcheck', 'StopSignal', 'OnBuild'];

async function* cases(dir: string): AsyncGenerator<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* cases(p);
    else if (e.name.endsWith('.json')) yield p;
  }
}

function pick(config: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of KEYS) if (config[k] !== undefined) out[k] = config[k];
  return out;
}

async function main(): Promise<number> {
  const dir = process.argv[2] ?? '/work/shared/conformance/parser';
  const root = await mkdtemp(join(tmpdir(), 'tsbuild-conf-'));
  let passed = 0;
  let failed = 0;
  try {
    const store = await Store.open(root);
    for await (const jsonPath of cases(dir)) {
      const c = JSON.parse(await readFile(jsonPath, 'utf8')) as { config?: Record<string, unknown>; buildArgs?: Record<string, string>; target?: string };
      if (!c.config) continue;
      const dockerfile = jsonPath.replace(/\.json$/, '.Dockerfile');
      const name = basename(dockerfile);
      try {
        const r = await build({
          store,
          contextDir: null,
          dockerfile: { path: dockerfile },
          dockerfileName: name,
          buildArgs: c.buildArgs ?? {},
          ...(c.target ? { target: c.target } : {}),
          sourceDateEpoch: 0,
        });
        const img = await store.resolveImage(r.id);
        const got = pick(visibleConfig(img.config.config) as Record<string, unknown>);
        const want = pick(c.config);
        if (isDeepStrictEqual(got, want)) passed++;
        else {
          failed++;
          console.log(`FAIL ${jsonPath}\n  want ${JSON.stringify(want)}\n  got  ${JSON.stringify(got)}`);
        }
      } catch (err) {
        failed++;
        console.log(`FAIL ${jsonPath}: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}

process.exitCode = await main();
