export type * from './types.js';
export { DockerfileError, DockerfileParseError, ExpansionError } from './errors.js';
export type { DockerfileErrorCode, ErrorLocation, DockerfileErrorOptions } from './errors.js';
