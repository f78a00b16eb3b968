import test from 'ava';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDockerfile } from '../src/index.js';

// dist/test → packages/parser → packages → repo root
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..', 'fixtures', 'dockerfiles');
const update = process.env['UPDATE_GOLDEN'] === '1';

/** A stable dump: JSON with keys in insertion order (fixed per type), undefined fields dropped. */
function dump(text: string): string {
  return JSON.stringify(parseDockerfile(text), null, 2) + '\n';
}

for (const name of readdirSync(root).sort()) {
  test(`golden: ${name}`, (t) => {
    const dir = join(root, name);
    const got = dump(readFileSync(join(dir, 'Dockerfile'), 'utf8'));
    const goldenPath = join(dir, 'parsed.json');
    if (update) {
      mkdirSync(dir, { recursive: true });
      writeFileSync(goldenPath, got);
    }
    t.is(got, readFileSync(goldenPath, 'utf8'));
  });
}
