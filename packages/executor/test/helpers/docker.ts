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

/** Starts dockerd with scripts/start-dockerd.sh when needed; true when `docker info` answers. */
export function dockerAvailable(): boolean {
  if (spawnSync(DOCKER, ['info'], { stdio: 'ignore', env }).status === 0) return true;
  spawnSync('bash', [path.join(repoRoot, 'scripts/start-dockerd.sh')], { stdio: 'ignore' });
  return spawnSync(DOCKER, ['info'], { stdio: 'ignore', env }).status === 0;
}

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
    execFileSync('sh', ['-c', `tar -C '${rootfs}' --numeric-owner -c . | ${DOCKER} import -c 'CMD ["sh"]' - ${this.base}`], { env, stdio: 'ignore' });
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
    const r = spawnSync(DOCKER, ['build', '--rm', '--force-rm', ctx], { env, encoding: 'utf8', maxBuffer: 64 << 20 });
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
