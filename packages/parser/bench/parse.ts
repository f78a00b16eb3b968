/**
 * Parser benchmark: `npm run bench:parse`. Parses a generated 10,000-instruction
 * Dockerfile and a Dockerfile with one 1 MB line; prints the median parse time of a few
 * runs and the memory growth, against the targets (< 200 ms, < 100 MB).
 */
import { checkDockerfile, parseDockerfile } from '../src/index.js';

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

function measure(name: string, text: string, runs: number): void {
  global.gc?.();
  const rss0 = process.memoryUsage().rss;
  const heap0 = process.memoryUsage().heapUsed;
  let peakRss = rss0;
  let peakHeap = heap0;
  const times: number[] = [];
  for (let r = 0; r < runs; r++) {
    const t0 = process.hrtime.bigint();
    const df = parseDockerfile(text);
    checkDockerfile(df);
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  const mb = (b: number): string => (b / 1024 / 1024).toFixed(1);
  console.log(
    `${name}: ${(text.length / 1024).toFixed(0)} KiB, parse+check median ${median.toFixed(1)} ms (target < 200 ms) ` +
      `${median < 200 ? 'OK' : 'SLOW'}; rss +${mb(peakRss - rss0)} MB, heapUsed +${mb(peakHeap - heap0)} MB (target < 100 MB) ` +
      `${peakRss - rss0 < 100 * 1024 * 1024 ? 'OK' : 'HIGH'}`,
  );
}

measure('10,000 instructions', manyInstructions(10_000), 5);
measure('one 1 MB line', longLine(1024 * 1024), 5);
