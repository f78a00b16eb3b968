export { build, type BuildOptions, type BuildResult, type StepResult } from './build.js';
export { BuildError, type BuildErrorCode } from './errors.js';
export { parseSecretFlag, type BuildSecret } from './secrets.js';
export { cacheKeyOf, explainDifference, type CacheInputs, type CacheRecord } from './cache.js';
export type { BuildEvent, BuildEventSink } from './events.js';
export { planBuild, hostPlatform, platformString, PREDEFINED_ARGS, type BuildPlan, type PlannedStage } from './plan.js';
export { applyConfigStep, scratchConfig, visibleConfig, type ConfigStep, type ConfigState } from './config.js';
export { expandStep, type ExpandedStep } from './expand.js';
