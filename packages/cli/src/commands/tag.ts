/** `tsbuild tag SOURCE TARGET`: a new reference to an image. */
import { parseReference, referenceProblem, ReferenceError, tagImage } from '@tsbuild/layer-store';
import { parseArgs, UsageError } from '../args.js';
import type { CliContext } from '../context.js';
import { notFoundName, openStore } from './image-output.js';

export async function run(argv: string[], ctx: CliContext): Promise<number> {
  const args = parseArgs(argv, [{ name: 'help', type: 'boolean' }]);
  if (args.flags.has('help')) return void ctx.stdout.write('Usage: tsbuild tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]\n\nCreate a tag TARGET_IMAGE that refers to SOURCE_IMAGE\n'), 0;
  if (args.positionals.length !== 2) throw new UsageError('"tag" requires exactly 2 arguments.', 'Usage: tsbuild tag SOURCE_IMAGE[:TAG] TARGET_IMAGE[:TAG]');
  const [source, target] = args.positionals as [string, string];
  let opened: Awaited<ReturnType<typeof openStore>> | undefined;
  const store = async (): Promise<Awaited<ReturnType<typeof openStore>>> => (opened ??= await openStore(ctx));
  const sourceError = (err: unknown): string | undefined => {
    const bad = referenceReason(err);
    return bad === undefined ? undefined : `Error parsing reference: ${JSON.stringify(source)} is not a valid repository/tag: ${bad}`;
  };
  // Docker's CLI checks the source's syntax, then the target's, before asking for the source (a
  // source the parser refuses may still be a name an older version stored: looked up first)
  // Docker's CLI takes a reference, or an image ID / prefix
  if (referenceProblem(source) !== undefined) {
    const problem = await (await store()).resolveImage(source).then(() => undefined, (err: unknown) => sourceError(err));
    if (problem !== undefined) return void ctx.stderr.write(`${problem}\n`), 1;
  }
  const problem = targetProblem(target);
  if (problem !== undefined) {
    ctx.stderr.write(`${problem}\n`);
    return 1;
  }
  try {
    await tagImage(await store(), source, target);
  } catch (err) {
    if ((err as { code?: string }).code !== 'E_IMAGE_NOT_FOUND') throw err;
    // Docker's CLI refuses a source that is no valid reference (a name an older version stored is
    // found above, by its stored text)
    const bad = referenceReason(err);
    ctx.stderr.write(bad !== undefined ? `Error parsing reference: ${JSON.stringify(source)} is not a valid repository/tag: ${bad}\n` : `Error response: No such image: ${notFoundName(source)}\n`);
    return 1;
  }
  return 0;
}

/**
 * Docker's wording of why an image name is no valid reference, when `err` (from `resolveImage`)
 * failed for that reason; undefined for any other error.
 */
export function referenceReason(err: unknown): string | undefined {
  const cause = (err as { cause?: unknown }).cause;
  return cause instanceof ReferenceError ? dockerReferenceReason(cause) : undefined;
}

/** What Docker 20.10's `docker tag` prints for a target it refuses, or undefined for a good one. */
export function targetProblem(target: string): string | undefined {
  try {
    if (parseReference(target).digest !== undefined) return 'refusing to create a tag with a digest reference';
    return undefined;
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err;
    return `Error parsing reference: ${JSON.stringify(target)} is not a valid repository/tag: ${dockerReferenceReason(err)}`;
  }
}

/** distribution/reference's error text for what our parser found wrong. */
export function dockerReferenceReason(err: ReferenceError): string {
  if (err.reason === 'repository name must be lowercase') return 'invalid reference format: repository name must be lowercase';
  if (err.reason.startsWith('repository name must not be more than')) return err.reason;
  if (err.reason.startsWith('cannot specify 64-byte hexadecimal strings')) return `invalid repository name (${err.input}), cannot specify 64-byte hexadecimal strings`;
  return 'invalid reference format';
}
