/**
 * Runs the parser conformance corpus: `npm run conformance [DIR]`.
 * Each case NAME.Dockerfile + NAME.json (see shared/conformance/README.md).
 * Prints failing cases with a diff; last line `N passed, M failed`; exit 1 on failures.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkDockerfile, DockerfileParseError, parseDockerfile } from '../src/index.js';

interface Case {
  expect: 'ok' | 'error';
  errorLine?: number;
  instructions?: [string, number][];
  buildArgs?: Record<string, string>;
  target?: string;
}

const here = dirname(fileURLToPath(import.meta.url));
// dist/bench → packages/parser → packages → repo root → ../shared
const repoRoot = resolve(here, '..', '..', '..', '..');
const dir = resolve(process.argv[2] ?? join(repoRoot, '..', 'shared', 'conformance', 'parser'));

function walk(d: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(d).sort()) {
    const p = join(d, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.json')) out.push(p);
  }
  return out;
}

type Outcome = { kind: 'ok'; instructions: [string, number][] } | { kind: 'error'; line: number; message: string };

function run(text: string, c: Case): Outcome {
  try {
    const df = parseDockerfile(text);
    const res = checkDockerfile(df, { ...(c.buildArgs ? { buildArgs: c.buildArgs } : {}), ...(c.target !== undefined ? { target: c.target } : {}) });
    if (res.errors.length > 0) return { kind: 'error', line: res.errors[0]!.line, message: res.errors[0]!.message };
    return { kind: 'ok', instructions: df.instructions.map((i) => [i.kind, i.range.start.line]) };
  } catch (err) {
    if (err instanceof DockerfileParseError) return { kind: 'error', line: err.errors[0]!.line, message: err.errors[0]!.message };
    throw err;
  }
}

let passed = 0;
let failed = 0;
for (const jsonPath of walk(dir)) {
  const name = jsonPath.slice(dir.length + 1, -'.json'.length);
  const c = JSON.parse(readFileSync(jsonPath, 'utf8')) as Case;
  const text = readFileSync(jsonPath.slice(0, -'.json'.length) + '.Dockerfile', 'utf8');
  let got: Outcome;
  try {
    got = run(text, c);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: crashed: ${(err as Error).stack}`);
    continue;
  }
  const problems: string[] = [];
  if (c.expect === 'error') {
    if (got.kind !== 'error') problems.push(`- expected error at line ${c.errorLine}\n+ accepted: ${JSON.stringify(got.instructions)}`);
    else if (got.line !== c.errorLine) problems.push(`- error line ${c.errorLine}\n+ error line ${got.line}: ${got.message}`);
  } else if (got.kind === 'error') {
    problems.push(`- expected ok\n+ error: ${got.message}`);
  } else if (c.instructions && JSON.stringify(got.instructions) !== JSON.stringify(c.instructions)) {
    problems.push(`- ${JSON.stringify(c.instructions)}\n+ ${JSON.stringify(got.instructions)}`);
  }
  if (problems.length) {
    failed++;
    console.log(`FAIL ${name}\n${problems.join('\n')}`);
  } else passed++;
}
console.log(`${passed} passed, ${failed} failed`);
process.exitCode = failed > 0 ? 1 : 0;
