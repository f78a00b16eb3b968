/**
 * Entry of the bundled CLI (`dist/tsbuild.cjs`, made by `scripts/bundle-cli.mjs` and loaded by
 * `bin/tsbuild.cjs`): runs tsbuild with this process's arguments and streams.
 */
import { runCli } from './main.js';

runCli();
