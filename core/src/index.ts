import 'reflect-metadata';

/** Plugins take these from here, so that they and cr share one tsyringe. */
export { inject, injectable, singleton } from 'tsyringe';
export type { DependencyContainer } from 'tsyringe';

export * from './plugin/contract.js';
export { NAMESPACES_GROUP, PluginRegistry, type RegisteredPlugin } from './plugin/registry.js';
export { loadPlugins } from './plugin/loader.js';
export { ownNamespaceDefault } from './plugin/own-namespace.js';
export { descriptionProblems, descriptionsOf, installDescription, isAnonInode, type DescriptorNumber, type OpenDescription } from './plugin/fd-descriptions.js';
export { orderTypes, type TypeDependencies } from './graph/type-order.js';
export { ResourceGraph } from './graph/resource-graph.js';
export {
  Policy,
  describeRule,
  describeSelection,
  describeSelector,
  matchesSelector,
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
export { blobProblems, recordProblems, type ReadRecord } from './image/record-checks.js';
export * from './image/layout.js';
export { CheckpointEngine, type CheckpointPlan, type CheckpointRequest, type CheckpointResult, type CollectedObjectEntry } from './engine/checkpoint-engine.js';
export { RestoreEngine, type CheckedImage, type CheckedRecord, type RestoreRequest, type RestoredObject } from './engine/restore-engine.js';
export type { ExternalMapping } from './engine/external-references.js';
export type { ProcessTargetHandle, IpcNsTargetHandle } from './engine/targets.js';
export { CR_VERSION } from './engine/version.js';
export { SAFE_DIRECTORIES_ENV, assertTrustedFile, listedSafe, untrustedReason } from './trust/safe-directories.js';
export { describeOwners, ownershipProblem, type Ownership } from './trust/ownership.js';
export { loadConfigFile, resolveConfig, CONFIG_MODULE_NAME, type ConfigFile, type ConfigLayer, type ResolvedConfig } from './config/load-config.js';
export { DEFAULT_CONFIG } from './config/defaults.js';
export { createCrContainer } from './container.js';
export * from './errors.js';
export { describeZodError, formatPath } from './zod-issues.js';
export { Kernel } from './kernel/kernel.js';
export type { TimerfdState } from './kernel/event-fds.js';
export { Directory } from './kernel/directory.js';
export { KernelError, errnoName } from './kernel/kernel-error.js';
export { NAMESPACE_FLAGS, NamespaceHandle, Namespaces, pinnedNamespacePaths, type NamespaceKind } from './kernel/namespaces.js';
export type { FeatureResult } from './kernel/features.js';
export { SysvIpc, SHM_DEST, SHM_LOCKED, hex, type IpcKind, type IpcObjectInfo, type IpcOwnership, type MsgInfo, type QueuedMessage, type SemInfo, type ShmInfo } from './kernel/sysvipc.js';
export type { ShmMapping } from './kernel/libc.js';
export type { ProcessStat } from './kernel/procfs.js';
export { Ptrace, REGISTER_NAMES, type RegisterName, type Registers, type RseqConfiguration } from './kernel/ptrace.js';
export { RemoteTask, type AltStack, type SignalAction } from './kernel/remote-task.js';
export type { Vma } from './kernel/proc-maps.js';
export { PAGE_SIZE, type PageRun, type PageSelection } from './kernel/pagemap.js';
export type { FdInfo, MmBounds, ProcessStatus } from './kernel/procfs.js';
export { FS_MAGIC, classifyFd, type FdIdentity, type FdKind, type FdStat, type OpaqueFdKind, type ReopenableFdKind } from './kernel/fd-kind.js';
export * from './kernel/syscalls.js';
export { readRegions, writeRegions, type FileRegion } from './io/file-regions.js';
