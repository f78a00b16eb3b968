export type * from './types.js';
export { DockerfileError, DockerfileParseError, ExpansionError } from './errors.js';
export type { DockerfileErrorCode, ErrorLocation, DockerfileErrorOptions } from './errors.js';
export { parseDockerfile, parseJsonArray } from './parse.js';
export { expandWord, expandWords } from './expand.js';
export type { Lookup, ExpandOptions } from './expand.js';
export {
  parseSignal,
  parsePortSpec,
  parseDuration,
  parseMount,
  parseGoBool,
  isValidStageName,
  ValueError,
  MINIMUM_HEALTHCHECK_DURATION_NS,
} from './validate.js';
export { expandInstruction, checkDockerfile } from './check.js';
export type { ExpandInstructionOptions, CheckOptions, CheckResult, CheckedStage } from './check.js';
