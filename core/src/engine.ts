/**
 * @cr/core/engine — what the CLI and library users drive: the checkpoint and restore engines, the
 * container, plugin loading and registry, policy and advice, images, config and trust checks.
 * Plugins never import it (core/test/plugin-boundary.test.ts fails if one does); they use
 * `@cr/core`, the plugin API, which this module does not repeat.
 */
import 'reflect-metadata';

export type { DependencyContainer } from 'tsyringe';

export { NAMESPACES_GROUP, PluginRegistry, type RegisteredPlugin } from './plugin/registry.js';
export { loadPlugins, registerPluginModule } from './plugin/loader.js';
export { setCaller } from './engine/caller.js';
export { orderTypes, type TypeDependencies } from './graph/type-order.js';
export { ResourceGraph } from './graph/resource-graph.js';
export {
  Policy,
  describeRule,
  describeSelection,
  parseSelection,
  parseSelector,
  typeSelectionRules,
  typedRules,
  type PolicySubject,
  type RuleTyping,
  type Selections,
  type SourcedRule,
} from './policy/policy.js';
export { adviceRules, policyFromConfig, type AppliedAdvice } from './policy/from-config.js';
export { describeSelectable, typedMatch, typedValue, untypedAttributes, type SelectableAttributes } from './policy/selector-types.js';
export {
  ADVICE_DIR_ENV,
  DEFAULT_ADVICE_DIR,
  adviceDir,
  adviceFileOf,
  adviceFileProblem,
  advisersOf,
  assertMayAdvise,
  parseAdvice,
  pruneAdvice,
  readAdvice,
  removeAdvice,
  writeAdvice,
  type AdviceReading,
} from './advice/advice-file.js';
export { ImageWriter } from './image/image-writer.js';
export { ImageReader } from './image/image-reader.js';
export { readImageStream, writeImageStream } from './image/image-stream.js';
export { recordProblems, type ReadRecord } from './image/record-checks.js';
export { readImage, readVerifiedImage, type ReadImage } from './image/read-image.js';
export * from './image/layout.js';
export { CheckpointEngine, type CheckpointPlan, type CheckpointRequest, type CheckpointResult, type CollectedObjectEntry } from './engine/checkpoint-engine.js';
export { RestoreEngine, type CheckedImage, type CheckedRecord, type RestoreRequest, type RestoreResult, type RestoredObject } from './engine/restore-engine.js';
export type { ExternalMapping } from './engine/external-references.js';
export { CR_VERSION } from './engine/version.js';
export { SAFE_DIRECTORIES_ENV, assertTrustedFile, listedSafe, untrustedReason } from './trust/safe-directories.js';
export { describeOwners, ownershipProblem, type Ownership } from './trust/ownership.js';
export { loadConfigFile, resolveConfig, CONFIG_MODULE_NAME, type ConfigFile, type ConfigLayer, type ResolvedConfig } from './config/load-config.js';
export { DEFAULT_CONFIG } from './config/defaults.js';
export { createCrContainer } from './container.js';
export { LOGGER, silentLogger, type LogFn, type Logger } from './log/logger.js';
export { PROGRESS, noProgress, type ProgressReporter, type ProgressTask, type ProgressWork } from './log/progress.js';
export { describeBytes, type PhaseTimings } from './log/phases.js';
export { describeZodError, formatPath } from './zod-issues.js';
export { ONE_SHOT } from './one-shot-parse.js';
export { pinnedNamespacePaths } from './kernel/namespaces.js';
/** The raw kernel bindings under the Kernel service, for cr's own kernel tests and the benchmark. */
export { Libc } from './kernel/libc.js';
export { Ptrace } from './kernel/ptrace.js';
