/**
 * The oracle of differential tests: Docker 20.10's classic builder (`DOCKER_BUILDKIT=0
 * /usr/bin/docker build`). Every image and container made here is recorded and removed by `cleanup`.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { cp, readFile, rm, writeFile } from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';
import type { ImageConfig } from '@tsbuild/layer-store';
import { repoRoot } from './images.js';

const run = promisify(execFile);
export const DOCKER = '/usr/bin/docker';
const env = { ...process.env, DOCKER_BUILDKIT: '0' };

let dockerState: boolean | undefined;
/**
 * Whether dockerd answers; starts it once per process with scripts/start-dockerd.sh (scripts/test.sh
 * has started it already, so this is one `docker info`).
 */
export function dockerAvailable(): boolean {
  dockerState ??= spawnSync('bash', [path.join(repoRoot, 'scripts/start-dockerd.sh')], { stdio: ['ignore', 'ignore', 'inherit'], timeout: 400_000 }).status === 0;
  return dockerState;
}

/** Where no Docker engine can run, TSBUILD_TEST_NO_DOCKER=1 skips the differential tests (README). */
export const dockerSkipped = process.env.TSBUILD_TEST_NO_DOCKER === '1';
export const DOCKER_MISSING = 'dockerd is not running and scripts/start-dockerd.sh could not start it (log: /var/log/tsbuild-dockerd.log): the differential tests need Docker 20.10 (scripts/install-system-deps.sh installs docker.io); TSBUILD_TEST_NO_DOCKER=1 skips them';

/** What Docker built: its image config, and its flattened filesystem as a tar file. */
export interface DockerImage {
  config: ImageConfig;
  exportTar: string;
}

/** Images and containers created through one Oracle, removed by `cleanup`. */
export class Oracle {
  readonly #images: string[] = [];
  readonly #containers: string[] = [];
  readonly base: string;
  constructor(readonly unique: string) {
    this.base = `tsbuild-test-base-${unique}`;
  }

  /** `docker import`s the rootfs dir as the base image, with Cmd ["sh"] like our test store. */
  async importBase(rootfs: string): Promise<void> {
    await run('sh', ['-c', `tar -C '${rootfs}' --numeric-owner -c . | ${DOCKER} import -c 'CMD ["sh"]' - ${this.base}`], { env, timeout: 120_000 });
    this.#images.push(this.base);
  }

  /**
   * Builds `caseDir` (copied to `work`, `FROM busybox` rewritten to the imported base) with the
   * classic builder, then exports a container of the result to `<work>/docker-export.tar`.
   */
  async build(caseDir: string, work: string): Promise<DockerImage> {
    const ctx = path.join(work, 'docker-context');
    await cp(caseDir, ctx, { recursive: true, verbatimSymlinks: true });
    const df = path.join(ctx, 'Dockerfile');
    await writeFile(df, (await readFile(df, 'utf8')).replace(/^FROM busybox\b/gim, `FROM ${this.base}`));
    // asynchronous, so that the other tests of the file go on while Docker builds
    const r = await run(DOCKER, ['build', '--rm', '--force-rm', ctx], { env, encoding: 'utf8', maxBuffer: 64 << 20, timeout: 300_000 }).then(
      ({ stdout, stderr }) => ({ status: 0, stdout, stderr }),
      (e: { code?: number | string; stdout?: string; stderr?: string }) => ({ status: e.code ?? 'killed', stdout: e.stdout ?? '', stderr: e.stderr ?? '' }),
    );
    // every image the build made (final, intermediate, other stages), for cleanup
    for (const m of r.stdout.matchAll(/ ---> ([0-9a-f]{12})\s*$/gm)) this.#images.push(m[1] as string);
    const built = /Successfully built ([0-9a-f]{12})/.exec(r.stdout)?.[1];
    if (r.status !== 0 || built === undefined) throw new Error(`docker build failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
    this.#images.push(built);
    const saved = path.join(work, 'docker-save.tar');
    await run(DOCKER, ['save', '-o', saved, built], { env });
    const full = (await run(DOCKER, ['inspect', '--format', '{{.Id}}', built], { env })).stdout.trim();
    const configJSON = execFileSync('tar', ['-xOf', saved, `${full.replace('sha256:', '')}.json`], { maxBuffer: 64 << 20 }).toString('utf8');
    const cid = (await run(DOCKER, ['create', built], { env })).stdout.trim();
    this.#containers.push(cid);
    const exportTar = path.join(work, 'docker-export.tar');
    await run(DOCKER, ['export', '-o', exportTar, cid], { env });
    return { config: JSON.parse(configJSON) as ImageConfig, exportTar };
  }

  /** Removes every container and image this oracle made (newest first). */
  async cleanup(): Promise<void> {
    for (const c of this.#containers.splice(0)) spawnSync(DOCKER, ['rm', '-f', c], { stdio: 'ignore', env });
    for (const i of this.#images.splice(0).reverse()) spawnSync(DOCKER, ['rmi', '-f', i], { stdio: 'ignore', env });
  }
}


/** Removes a temp dir (helper for teardown). */
export const removeDir = (d: string): Promise<void> => rm(d, { recursive: true, force: true });
