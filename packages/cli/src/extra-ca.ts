/**
 * `NODE_EXTRA_CA_CERTS`, applied at the first TLS connection instead of at Node's start.
 *
 * Node 20 reads that file and builds its whole root certificate store before any JavaScript runs
 * (nodejs/node#40524, made lazy only in later Node versions): with Debian's bundle
 * (/etc/ssl/certs/ca-certificates.crt, ~140 certificates) that is 40 ms of every start on this
 * machine, `node -e 0` 0.11 s against 0.07 s without it, a fifth of a no-change rebuild. Most
 * commands never open a TLS connection: only registry commands, `import URL` and `ADD https://`.
 *
 * So the `tsbuild` launcher (bin/tsbuild.cjs, a shell line before the JavaScript) moves the
 * variable to {@link DEFERRED_EXTRA_CA_CERTS} before it starts Node, and the CLI calls
 * {@link deferExtraCaCerts}: the variable is back for child processes, and TLS client
 * connections trust Node's bundled roots plus that file's certificates, as Node would have.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { ConnectionOptions, SecureContext } from 'node:tls';

/** Where the launcher keeps `NODE_EXTRA_CA_CERTS` while Node starts without it. */
export const DEFERRED_EXTRA_CA_CERTS = 'TSBUILD_DEFERRED_NODE_EXTRA_CA_CERTS';

/**
 * Puts the file the launcher set aside back into `env.NODE_EXTRA_CA_CERTS` and has every TLS
 * client connection that names no CA, certificate or context of its own (fetch's, through
 * `tls.connect`) use one secure context that trusts Node's bundled roots and that file's
 * certificates, made on the first such connection. A file that cannot be read is reported
 * through `warn` then, with Node's wording, and the bundled roots are used alone, as Node does.
 * Does nothing when the launcher set nothing aside (`node bin/tsbuild.cjs`, or no variable).
 */
export function deferExtraCaCerts(env: NodeJS.ProcessEnv, warn: (message: string) => void): void {
  const file = env[DEFERRED_EXTRA_CA_CERTS];
  if (file === undefined) return;
  delete env[DEFERRED_EXTRA_CA_CERTS];
  if (file === '') return;
  env.NODE_EXTRA_CA_CERTS = file;
  // the exports object itself, whose `connect` Node's fetch calls; require works from these ES
  // modules and from the CommonJS bundle alike (its vm script has no dynamic import)
  const tls = createRequire(process.execPath)('node:tls') as typeof import('node:tls');
  const connect = tls.connect;
  let context: SecureContext | null | undefined;
  const secureContext = (): SecureContext | undefined => {
    if (context === undefined) {
      try {
        context = tls.createSecureContext({ ca: [...tls.rootCertificates, readFileSync(file, 'latin1')] });
      } catch (err) {
        warn(`Warning: Ignoring extra certs from \`${file}\`, load failed: ${(err as Error).message}\n`);
        context = null;
      }
    }
    return context ?? undefined;
  };
  const ownTrust = (o: ConnectionOptions): boolean =>
    o.secureContext !== undefined || o.ca !== undefined || o.pfx !== undefined || o.cert !== undefined || o.key !== undefined;
  tls.connect = function connectTrustingExtraCerts(this: unknown, ...args: unknown[]) {
    // connect(options[, cb]), connect(port[, host][, options][, cb]), connect(path[, options][, cb])
    const at = args.findIndex((a) => typeof a === 'object' && a !== null);
    if (at !== -1 && !ownTrust(args[at] as ConnectionOptions)) {
      const ctx = secureContext();
      if (ctx !== undefined) args[at] = { ...(args[at] as ConnectionOptions), secureContext: ctx };
    }
    return Reflect.apply(connect, this, args) as ReturnType<typeof connect>;
  } as typeof connect;
}
