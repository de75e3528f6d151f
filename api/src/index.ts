/**
 * @cr/api — cr as a library: checkpoint, restore and inspect from a Node.js program, with the
 * built-in plugins loaded by default. Importing it changes nothing in the process (no signal
 * handlers, environment or working directory); it loads libc through koffi.
 *
 *   import { checkpoint, restore } from '@cr/api';
 *   await checkpoint({ pid, imageDir: 'img', kill: true });
 *   const { pids } = await restore({ imageDir: 'img' });
 *
 * Errors are CrError subclasses with the CLI's exit codes. Plugins are written against @cr/core;
 * the engines underneath are @cr/core/engine.
 */
export { checkpoint, type CheckpointOptions } from './checkpoint.js';
export { restore, waitForExit, type RestoreOptions, type RestoreResult } from './restore.js';
export { inspect, type InspectOptions, type Inspection } from './inspect.js';
export type { CommonOptions } from './options.js';
export { BUILTIN_PLUGINS } from './builtin-plugins.js';
export { openSession, assertSelections, type Session, type SessionRequest } from './session.js';
export { parseMapExternal, typedMapping } from './map-external.js';
export { ConfigError, CrError, ExitCode, ImageError, InterruptedError, KernelError, PluginError, TargetError, UnsupportedError, type ExitCodeValue } from '@cr/core';
export type { CheckpointPlan, CheckpointResult, CollectedObjectEntry, LogFn, Logger, PhaseTimings, ProgressReporter, ProgressTask, ProgressWork, RestoredObject } from '@cr/core/engine';
export type { CheckpointTarget, CrConfig, Manifest, ObjectEntry } from '@cr/schemas';
