import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errnoOf } from './errors.js';

/** Per-step host-side files bind-mounted (writable, as in Docker) over the container's /etc/{hosts,resolv.conf,hostname}. */
export interface HostFiles { hosts: string; resolvConf: string; hostname: string }

/** An /etc/hosts entry added with `--add-host host:ip`. */
export interface HostEntry { host: string; ip: string }

/**
 * Writes hosts (Docker's default entries, then `extraHosts` as `ip<TAB>host` in order, as
 * libnetwork's etchosts.Build, then `hostname`), resolv.conf (a copy of the host's, empty if it has
 * none) and hostname into `dir`. They live outside the rootfs, so they never reach a layer.
 */
export async function writeHostFiles(dir: string, hostname: string, extraHosts: readonly HostEntry[] = [], hostResolvConf = '/etc/resolv.conf'): Promise<HostFiles> {
  const files: HostFiles = {
    hosts: path.join(dir, 'hosts'),
    resolvConf: path.join(dir, 'resolv.conf'),
    hostname: path.join(dir, 'hostname'),
  };
  let resolv = '';
  try {
    resolv = await readFile(hostResolvConf, 'utf8');
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw err;
  }
  await writeFile(
    files.hosts,
    `127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n${extraHosts.map((e) => `${e.ip}\t${e.host}\n`).join('')}127.0.0.1\t${hostname}\n`,
    { mode: 0o644 },
  );
  await writeFile(files.resolvConf, resolv, { mode: 0o644 });
  await writeFile(files.hostname, `${hostname}\n`, { mode: 0o644 });
  return files;
}
