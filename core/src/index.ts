import 'reflect-metadata';

/** Plugins take these from here, so that they and cr share one tsyringe. */
export { inject, injectable, singleton } from 'tsyringe';
export type { DependencyContainer } from 'tsyringe';

export * from './plugin/contract.js';
export { PluginRegistry, type RegisteredPlugin } from './plugin/registry.js';
export { loadPlugins } from './plugin/loader.js';
export { orderTypes, type TypeDependencies } from './graph/type-order.js';
export { ResourceGraph } from './graph/resource-graph.js';
export { Policy, describeRule, parseSelection, typeSelectionRules, type SourcedRule } from './policy/policy.js';
export { policyFromConfig } from './policy/from-config.js';
export { ImageWriter } from './image/image-writer.js';
export { ImageReader } from './image/image-reader.js';
export * from './image/layout.js';
export { CheckpointEngine, type CheckpointRequest, type CheckpointResult, type CollectedObjectEntry } from './engine/checkpoint-engine.js';
export { RestoreEngine, type RestoreRequest, type RestoredObject } from './engine/restore-engine.js';
export type { ProcessTargetHandle, IpcNsTargetHandle } from './engine/targets.js';
export { CR_VERSION } from './engine/version.js';
export { loadConfigFile, resolveConfig, CONFIG_MODULE_NAME, type ConfigFile, type ConfigLayer, type ResolvedConfig } from './config/load-config.js';
export { DEFAULT_CONFIG } from './config/defaults.js';
export { createCrContainer } from './container.js';
export * from './errors.js';
export { describeZodError, formatPath } from './zod-issues.js';
export { Kernel } from './kernel/kernel.js';
export { KernelError, errnoName } from './kernel/kernel-error.js';
export { NamespaceHandle, Namespaces, pinnedNamespacePaths, type NamespaceKind } from './kernel/namespaces.js';
export type { FeatureResult } from './kernel/features.js';
export { SysvIpc, SHM_DEST, SHM_LOCKED, hex, type IpcKind, type IpcObjectInfo, type IpcOwnership, type MsgInfo, type QueuedMessage, type SemInfo, type ShmInfo } from './kernel/sysvipc.js';
export type { ShmMapping } from './kernel/libc.js';
export type { ProcessStat } from './kernel/procfs.js';
export { Ptrace, REGISTER_NAMES, type RegisterName, type Registers, type RseqConfiguration } from './kernel/ptrace.js';
export { RemoteTask, type AltStack, type SignalAction } from './kernel/remote-task.js';
export type { Vma } from './kernel/proc-maps.js';
export { PAGE_SIZE, type PageRun, type PageSelection } from './kernel/pagemap.js';
export type { FdInfo, MmBounds, ProcessStatus } from './kernel/procfs.js';
export * from './kernel/syscalls.js';
