/**
 * `import -c` lines read as Docker 20.10's daemon reads them (dockerfile.BuildFromConfig): the
 * changes joined with newlines and parsed as a Dockerfile by the real parser; every instruction
 * must be one of the commit commands (`cmd entrypoint healthcheck env expose label onbuild user
 * volume workdir`, else `<keyword> is not a valid change command`, checked before anything else);
 * each is then dispatched as the classic builder dispatches it, variables expanded against the
 * config built so far (so `ENV A=$HOME` is `A=`, `ENV B=$A` after `ENV A=1` is `B=1`).
 */
import { parseDockerfile, DockerfileParseError, type Instruction, type Lookup } from '@tsbuild/parser';
import { applyConfigStep, expandStep, type ConfigState, type ConfigStep } from '@tsbuild/executor';
import { StoreError, type ContainerConfig } from '@tsbuild/layer-store';

/** The instructions `docker import -c` / `docker commit -c` take (moby validCommitCommands). */
const COMMIT_COMMANDS: ReadonlySet<string> = new Set(['CMD', 'ENTRYPOINT', 'HEALTHCHECK', 'ENV', 'EXPOSE', 'LABEL', 'ONBUILD', 'USER', 'VOLUME', 'WORKDIR']);
const HINT = 'a change is a Dockerfile line: CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, USER, VOLUME or WORKDIR';

function changeError(message: string, cause?: unknown): StoreError {
  return new StoreError(message, { code: 'E_CHANGE', hint: HINT, ...(cause !== undefined ? { cause } : {}) });
}

/**
 * The container config `changes` make of an empty one.
 * @throws StoreError E_CHANGE with dockerd's message (`stopsignal is not a valid change command`,
 * `LABEL must have two arguments`, `Invalid containerPort: abc`…).
 */
export function configFromChanges(changes: readonly string[]): ContainerConfig {
  if (changes.length === 0) return {};
  let instructions: readonly Instruction[];
  try {
    // a stage is needed to parse instructions; the FROM line is ours, not the user's
    instructions = parseDockerfile(`FROM scratch\n${changes.join('\n')}`).instructions.slice(1);
  } catch (err) {
    if (!(err instanceof DockerfileParseError)) throw err;
    // dockerd checks every keyword before it parses any instruction's arguments
    const byLine = [...err.errors].sort((a, b) => a.line - b.line);
    const unknown = byLine.find((e) => e.code === 'E_UNKNOWN_INSTRUCTION');
    const word = unknown ? /unknown instruction: (\S+)/.exec(unknown.detail)?.[1] : undefined;
    if (word !== undefined) throw changeError(`${word.toLowerCase()} is not a valid change command`, err);
    throw changeError(byLine[0]?.detail ?? err.message, err);
  }
  // blank or comment-only changes: Docker's parser.Parse fails on a text with no instruction
  if (instructions.length === 0) throw changeError('file with no instructions');
  const invalid = instructions.find((i) => !COMMIT_COMMANDS.has(i.kind));
  if (invalid) throw changeError(`${invalid.kind.toLowerCase()} is not a valid change command`);
  let state: ConfigState = { config: {}, cmdSet: false };
  for (const instr of instructions) {
    const env = new Map((state.config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=') < 0 ? e.length : e.indexOf('=')), e.slice(e.indexOf('=') + 1)] as const));
    try {
      state = applyConfigStep(state, stepOf(instr, (name) => env.get(name))).state;
    } catch (err) {
      throw changeError(err instanceof Error ? err.message : String(err), err);
    }
  }
  return state.config;
}

/**
 * One commit command, its words expanded as the classic builder's dispatcher expands them: the
 * build's own expansion (every commit command is a config step).
 */
function stepOf(instr: Instruction, lookup: Lookup): ConfigStep {
  return expandStep(instr, lookup, '\\') as ConfigStep;
}
