/**
 * Round trips through real clients: skopeo and umoci read what save writes and the store itself;
 * load reads what skopeo and `docker save` write; `docker load` reads what save writes and runs it.
 */
import test, { type ExecutionContext } from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { exportImage, importRootfs, load, save, type Store } from '../src/index.js';
import { collector, dockerTest, importBusybox, REPO, tempDir, tempStore } from './archive-fixtures.js';
import tar from 'tar-stream';

const DOCKER = '/usr/bin/docker';
const dockerEnv = { ...process.env, DOCKER_BUILDKIT: '0' };

function docker(args: string[], input?: Buffer): string {
  return execFileSync(DOCKER, args, { env: dockerEnv, encoding: 'utf8', maxBuffer: 1 << 28, ...(input ? { input } : {}) });
}

/** A unique docker tag; the image is removed when the test ends. */
function dockerTag(t: ExecutionContext): string {
  const tag = `lsexp-test:${randomBytes(5).toString('hex')}`;
  t.teardown(() => {
    spawnSync(DOCKER, ['rmi', '-f', tag], { env: dockerEnv, stdio: 'ignore' });
  });
  return tag;
}

async function saveToFile(store: Store, refs: string[], file: string): Promise<void> {
  await save(store, refs, createWriteStream(file));
}

async function tarNames(stream: (out: NodeJS.WritableStream) => Promise<void>): Promise<string[]> {
  const out = collector();
  await stream(out);
  const extract = tar.extract();
  const names: string[] = [];
  const done = (async () => {
    for await (const e of extract) {
      names.push(e.header.name.replace(/^\.\//, '').replace(/\/$/, ''));
      e.resume();
    }
  })();
  extract.end(out.bytes());
  await done;
  return names.filter((n) => n !== '' && n !== '.').sort();
}

test('skopeo reads save output as docker-archive: and oci-archive:, and copies it', async (t) => {
  const store = await tempStore(t);
  const { id } = await importBusybox(t, store, 'lsexp:sk');
  const dir = await tempDir(t);
  const file = join(dir, 'x.tar');
  await saveToFile(store, ['lsexp:sk'], file);
  const img = await store.resolveImage('lsexp:sk');
  const asDocker = JSON.parse(execFileSync('skopeo', ['inspect', `docker-archive:${file}`], { encoding: 'utf8' })) as { Layers: string[]; Architecture: string };
  t.deepEqual(asDocker.Layers, img.config.rootfs.diff_ids, 'skopeo reports diffIDs of the gzip layers it decompressed');
  const asOCI = JSON.parse(execFileSync('skopeo', ['inspect', `oci-archive:${file}:docker.io/library/lsexp:sk`], { encoding: 'utf8' })) as { Digest: string; Layers: string[] };
  t.is(asOCI.Digest, img.manifestDescriptor.digest);
  t.deepEqual(asOCI.Layers, img.manifest.layers.map((l) => l.digest));
  execFileSync('skopeo', ['copy', '-q', `docker-archive:${file}`, `oci:${join(dir, 'o1')}:x`]);
  execFileSync('skopeo', ['copy', '-q', `oci-archive:${file}:docker.io/library/lsexp:sk`, `oci:${join(dir, 'o2')}:x`]);
  const copied = JSON.parse(execFileSync('skopeo', ['inspect', '--config', `oci:${join(dir, 'o2')}:x`], { encoding: 'utf8' })) as { rootfs: { diff_ids: string[] } };
  t.deepEqual(copied.rootfs.diff_ids, img.config.rootfs.diff_ids);
  t.truthy(id);
});

test('skopeo and umoci read the store itself as an OCI layout', async (t) => {
  const store = await tempStore(t);
  await importBusybox(t, store, 'lsexp:layout');
  const img = await store.resolveImage('lsexp:layout');
  const info = JSON.parse(execFileSync('skopeo', ['inspect', `oci:${store.root}:docker.io/library/lsexp:layout`], { encoding: 'utf8' })) as { Digest: string };
  t.is(info.Digest, img.manifestDescriptor.digest);
  const dir = await tempDir(t);
  execFileSync('umoci', ['unpack', '--image', `${store.root}:docker.io/library/lsexp:layout`, join(dir, 'bundle')]);
  t.true((await stat(join(dir, 'bundle/rootfs/bin/busybox'))).isFile());
});

for (const transport of ['docker-archive', 'oci-archive'] as const) {
  test(`load takes what skopeo copy writes as ${transport}:`, async (t) => {
    const src = await tempStore(t);
    await importBusybox(t, src, 'lsexp:fromsk');
    const img = await src.resolveImage('lsexp:fromsk');
    const dir = await tempDir(t);
    const file = join(dir, 'sk.tar');
    execFileSync('skopeo', ['copy', '-q', `oci:${src.root}:docker.io/library/lsexp:fromsk`, `${transport}:${file}:lsexp/skopeo:copied`]);
    const dst = await tempStore(t);
    const [loaded] = await load(dst, createReadStream(file));
    t.deepEqual(loaded!.tags, ['docker.io/lsexp/skopeo:copied']);
    const back = await dst.resolveImage('lsexp/skopeo:copied');
    t.deepEqual(back.config.rootfs.diff_ids, img.config.rootfs.diff_ids);
    t.deepEqual(back.config.config, img.config.config);
  });
}

dockerTest('docker load takes save output, and the image runs', async (t) => {
  const store = await tempStore(t);
  const tag = dockerTag(t);
  const { id } = await importBusybox(t, store, tag, ['CMD ["sh"]', 'ENV GREETING=hi']);
  const dir = await tempDir(t);
  const file = join(dir, 'x.tar');
  await saveToFile(store, [tag], file);
  t.regex(docker(['load', '-i', file]), new RegExp(`Loaded image: ${tag}`));
  t.is(docker(['image', 'inspect', '--format', '{{.Id}}', tag]).trim(), id, 'Docker computes the same image ID');
  t.is(docker(['run', '--rm', tag, '/bin/busybox', 'sh', '-c', 'echo $GREETING']).trim(), 'hi');
  docker(['run', '--rm', tag, '/bin/busybox', 'true']);
});

dockerTest('load takes docker save output: same ID, config and files', async (t) => {
  const { tarFile } = await (async () => {
    const s = await tempStore(t);
    return importBusybox(t, s, 'lsexp:unused');
  })();
  const tag = dockerTag(t);
  docker(['import', '-c', 'CMD ["sh"]', '-c', 'ENV A=b C=d', '-c', 'EXPOSE 80', '-c', 'LABEL x=y', '-c', 'WORKDIR /w', '-c', 'USER app', '-c', 'VOLUME /data', '-c', 'ENTRYPOINT echo hi', '-c', 'ONBUILD RUN true', '-m', 'from docker', tarFile, tag]);
  const dir = await tempDir(t);
  const saved = join(dir, 'd.tar');
  docker(['save', '-o', saved, tag]);
  const store = await tempStore(t);
  const [loaded] = await load(store, createReadStream(saved));
  const dockerID = docker(['image', 'inspect', '--format', '{{.Id}}', tag]).trim();
  t.is(loaded!.id as string, dockerID);
  const dockerConfig = JSON.parse(docker(['image', 'inspect', '--format', '{{json .Config}}', tag])) as Record<string, unknown>;
  const ours = await store.resolveImage(tag);
  t.deepEqual(ours.config.config as unknown, dockerConfig);
  // Files: our flattened export against the tarball Docker imported.
  const exported = await tarNames((out) => exportImage(store, tag, out as never));
  const original = await tarNames(async (out) => pipeline(createReadStream(tarFile), out as never));
  t.deepEqual(exported, original);
});

dockerTest('import makes the config docker import makes', async (t) => {
  const tag = dockerTag(t);
  const changes = ['CMD ["sh"]', 'ENV A=b C="d e"', 'EXPOSE 80 53/udp', 'LABEL x=y "a b"=c', 'WORKDIR /w', 'WORKDIR sub', 'USER app', 'VOLUME ["/data", "/logs"]', 'ENTRYPOINT echo hi', 'ONBUILD RUN true'];
  const store = await tempStore(t);
  const { tarFile } = await importBusybox(t, store, 'lsexp:ours', changes);
  docker(['import', ...changes.flatMap((c) => ['-c', c]), tarFile, tag]);
  const theirs = JSON.parse(docker(['image', 'inspect', tag]))[0] as { Config: Record<string, unknown>; Comment: string; Architecture: string; Os: string; RootFS: { Layers: string[] } };
  const ours = await store.resolveImage('lsexp:ours');
  const defaults = new Set(['Hostname', 'Domainname', 'AttachStdin', 'AttachStdout', 'AttachStderr', 'Tty', 'OpenStdin', 'StdinOnce', 'Image']);
  const theirConfig = Object.fromEntries(Object.entries(theirs.Config).filter(([k, v]) => !defaults.has(k) && v !== null));
  t.deepEqual(ours.config.config as unknown, theirConfig);
  t.is((ours.config as { comment?: string }).comment, theirs.Comment);
  t.is(ours.config.architecture, theirs.Architecture);
  t.is(ours.config.os, theirs.Os);
  t.is(ours.config.history?.[0]?.comment, 'Imported from -');
});

test('import with SOURCE_DATE_EPOCH is reproducible across stores', async (t) => {
  const a = await tempStore(t);
  const b = await tempStore(t);
  const { id, tarFile } = await importBusybox(t, a, 'lsexp:repro');
  const again = await importRootfs(b, createReadStream(tarFile), { ref: 'lsexp:repro', changes: ['CMD ["sh"]'], sourceDateEpoch: 0 });
  t.is(again.id, id);
});
