/**
 * Parser benchmark: `npm run bench:parse`.
 *
 * Cases: a generated 10,000-instruction Dockerfile and one with a 1 MB line. For each case
 * the parent starts two fresh child processes, so one case's garbage or JIT state cannot
 * colour another's figures:
 * - a memory child parses and checks once, as a real build does, and reports its peak RSS
 *   (getrusage maxrss) above the RSS it had just before parsing;
 * - a timing child warms up, then times parseDockerfile, checkDockerfile and both together
 *   over several runs and reports medians of wall time and of process CPU time.
 * The machine may be shared, so CPU time and the load average are printed beside wall time;
 * the verdicts use wall time. Exit code 1 when any target is missed.
 */
import { execFileSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { checkDockerfile, parseDockerfile } from '../src/index.js';

const TIME_TARGET_MS = 200;
const RSS_TARGET_MB = 100;
const WARMUP_RUNS = 3;
const TIMED_RUNS = 7;

function manyInstructions(n: number): string {
  const kinds = [
    (i: number) => `RUN echo step ${i} && \\\n    test -n "$HOME" || exit ${i % 7}`,
    (i: number) => `ENV VAR_${i}="value ${i}" OTHER_${i}=\${VAR_${i}:-x}`,
    (i: number) => `LABEL l${i}=v${i} "k ${i}"='q $x'`,
    (i: number) => `COPY --chown=1000:1000 src/${i} /dst/${i}/`,
    (i: number) => `ARG A${i}=${i}`,
    (i: number) => `WORKDIR /w/\${A${i - 1}:-x}`,
    (i: number) => `EXPOSE ${1000 + (i % 60000)}/tcp`,
    (i: number) => `CMD ["/bin/app", "--n", "${i}"]`,
  ];
  const lines = ['# syntax=docker/dockerfile:1', 'FROM scratch AS base'];
  for (let i = 1; i < n; i++) lines.push(kinds[i % kinds.length]!(i));
  return lines.join('\n') + '\n';
}

function longLine(bytes: number): string {
  const word = 'abcdefghij ';
  return `FROM scratch\nRUN echo ${word.repeat(Math.ceil(bytes / word.length))}\nLABEL x="${'y'.repeat(bytes)}"\n`;
}

const CASES: Record<string, () => string> = {
  '10,000 instructions': () => manyInstructions(10_000),
  'one 1 MB line': () => longLine(1024 * 1024),
};

interface MemoryReport {
  readonly kib: number;
  readonly instructions: number;
  readonly peakRssGrowth: number;
}

interface Timing {
  readonly wallMs: number;
  readonly cpuMs: number;
}

interface TimingReport {
  readonly parse: Timing;
  readonly check: Timing;
  readonly total: Timing;
}

function cpuMsSince(start: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Child: one cold parse+check; peak RSS above the RSS just before it. */
function memoryChild(text: string): MemoryReport {
  globalThis.gc?.();
  const before = process.memoryUsage().rss;
  const df = parseDockerfile(text);
  const res = checkDockerfile(df);
  if (res.errors.length > 0) throw new Error(`benchmark Dockerfile rejected: ${res.errors[0]!.message}`);
  const peak = process.resourceUsage().maxRSS * 1024;
  return { kib: text.length / 1024, instructions: df.instructions.length, peakRssGrowth: Math.max(0, peak - before) };
}

/** Child: warm-up runs, then medians of parse, check and both. */
function timingChild(text: string): TimingReport {
  const parse: Timing[] = [];
  const check: Timing[] = [];
  for (let r = 0; r < WARMUP_RUNS + TIMED_RUNS; r++) {
    globalThis.gc?.();
    let cpu = process.cpuUsage();
    let t0 = process.hrtime.bigint();
    const df = parseDockerfile(text);
    const p: Timing = { wallMs: Number(process.hrtime.bigint() - t0) / 1e6, cpuMs: cpuMsSince(cpu) };
    cpu = process.cpuUsage();
    t0 = process.hrtime.bigint();
    checkDockerfile(df);
    const c: Timing = { wallMs: Number(process.hrtime.bigint() - t0) / 1e6, cpuMs: cpuMsSince(cpu) };
    if (r < WARMUP_RUNS) continue;
    parse.push(p);
    check.push(c);
  }
  const med = (ts: readonly Timing[]): Timing => ({ wallMs: median(ts.map((t) => t.wallMs)), cpuMs: median(ts.map((t) => t.cpuMs)) });
  const total = parse.map((p, i): Timing => ({ wallMs: p.wallMs + check[i]!.wallMs, cpuMs: p.cpuMs + check[i]!.cpuMs }));
  return { parse: med(parse), check: med(check), total: med(total) };
}

function runChild<T>(mode: 'memory' | 'timing', name: string): T {
  const out = execFileSync(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), mode, name], { encoding: 'utf8' });
  return JSON.parse(out) as T;
}

function main(): void {
  const [mode, name] = process.argv.slice(2);
  if (mode === 'memory' || mode === 'timing') {
    const make = CASES[name ?? ''];
    if (!make) throw new Error(`unknown case ${name}`);
    const text = make();
    process.stdout.write(JSON.stringify(mode === 'memory' ? memoryChild(text) : timingChild(text)));
    return;
  }
  const fmt = (t: Timing): string => `${t.wallMs.toFixed(1)} ms (cpu ${t.cpuMs.toFixed(1)} ms)`;
  const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);
  console.log(`load average ${loadavg().map((l) => l.toFixed(2)).join(' ')} on this machine; medians of ${TIMED_RUNS} runs after ${WARMUP_RUNS} warm-up runs`);
  const verdicts: string[] = [];
  let failed = false;
  for (const name of Object.keys(CASES)) {
    const mem = runChild<MemoryReport>('memory', name);
    const t = runChild<TimingReport>('timing', name);
    console.log(`${name} (${mem.kib.toFixed(0)} KiB, ${mem.instructions} instructions):`);
    console.log(`  parse ${fmt(t.parse)}; check ${fmt(t.check)}; parse+check ${fmt(t.total)}`);
    console.log(`  peak rss +${mb(mem.peakRssGrowth)} MB over one cold parse+check in a fresh process`);
    const timeOk = t.total.wallMs < TIME_TARGET_MS;
    const rssOk = mem.peakRssGrowth < RSS_TARGET_MB * 1024 * 1024;
    failed ||= !timeOk || !rssOk;
    verdicts.push(
      `verdict ${name}: time ${t.total.wallMs.toFixed(1)} ms < ${TIME_TARGET_MS} ms ${timeOk ? 'PASS' : 'FAIL'}`,
      `verdict ${name}: rss +${mb(mem.peakRssGrowth)} MB < ${RSS_TARGET_MB} MB ${rssOk ? 'PASS' : 'FAIL'}`,
    );
  }
  for (const v of verdicts) console.log(v);
  process.exitCode = failed ? 1 : 0;
}

main();
