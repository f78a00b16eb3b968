export { ContextError } from './errors.js';
export { cleanPath, resolveInRoot, isWithin } from './paths.js';
export { goMatch, hasWildcards, validatePattern, BadPatternError } from './match.js';
export { parseDockerignore, compileIgnore, readDockerignore, type IgnoreMatcher } from './dockerignore.js';
export { selectSources, type Source, type SourceEntry, type EntryType, type SelectOptions } from './select.js';
export { hashSources, hashSourcesDetailed, StatIndex, type HashOptions, type HashResult } from './hash.js';
export { dockerSourceHash, downloadTarsum, type DockerHashContext } from './docker-hash.js';
export { copyInto, writeHeredoc, type CopyOptions, type HeredocOptions, type Owner } from './copy.js';
export { addInto, detectArchive, extractContextArchive, type AddOptions, type AddResult, type ArchiveFormat } from './add.js';
