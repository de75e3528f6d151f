import { CrError, ExitCode, Kernel } from '@cr/core';
import { CheckpointEngine, adviceDir, policyFromConfig, readAdvice, type CheckpointPlan, type CheckpointResult, type Logger } from '@cr/core/engine';
import type { CheckpointTarget, CrConfig } from '@cr/schemas';
import { sessionFor, type CommonOptions } from './options.js';
import { assertSelections } from './session.js';

export interface CheckpointOptions extends CommonOptions {
  /** The process to checkpoint (its whole tree of resources the plugins cover). */
  pid?: number;
  /** An IPC namespace to checkpoint on its own instead of a process: an nsfs path (`/proc/PID/ns/ipc`, a pinned file). */
  ipcNs?: string;
  /** Where to write the image; it must not exist or be empty. Not needed for a dry run. */
  imageDir?: string;
  /** Save only these types or groups (`--only`). */
  only?: readonly string[];
  /** Save these types or objects (`TYPE:ATTR=VALUE`) even where another rule excludes them (`--include`). */
  include?: readonly string[];
  /** Leave these types or objects out (`--exclude`). */
  exclude?: readonly string[];
  /** Leave these out as objects that must exist at restore (`--external`). */
  external?: readonly string[];
  /** End the saved process once the image is committed (`--kill`). */
  kill?: boolean;
  /** Collect and decide, write nothing: resolves to the plan (`--dry-run`). */
  dryRun?: boolean;
  /** A selector that matches no collected object is an error instead of a warning (`--strict`). */
  strict?: boolean;
  /** Apply the advice the process gave with `cr advise` (default true), as the CLI does. */
  advice?: boolean;
}

/**
 * Checkpoints a process (or an IPC namespace) into an image, as `cr checkpoint` does: the
 * built-in plugins and any others given, the policy of the config, advice and options. With
 * `dryRun`, resolves to what would be saved and why. Rejects with a CrError subclass (its
 * `exitCode` is the CLI's); the target is then left running as it was, and no image is written.
 */
export function checkpoint(options: CheckpointOptions & { dryRun: true }): Promise<CheckpointPlan>;
export function checkpoint(options: CheckpointOptions & { dryRun?: false; imageDir: string }): Promise<CheckpointResult>;
export async function checkpoint(options: CheckpointOptions): Promise<CheckpointPlan | CheckpointResult> {
  const target = targetOf(options);
  if (!options.dryRun && options.imageDir === undefined) throw new CrError('checkpoint: say where to write the image with imageDir, or ask for a dryRun', ExitCode.Usage);
  const session = await sessionFor(options, selectionLayers(options));
  const advice = options.advice === false || target.kind !== 'process' ? undefined : adviceOf(session.container.resolve(Kernel), target.pid, options.logger);
  if (advice) assertSelections(session.registry, `advice ${advice.file}`, advice.advice, advice.advice.rules);
  const policy = policyFromConfig(session.resolved, session.registry, advice);
  const engine = session.container.resolve(CheckpointEngine);
  if (options.dryRun) return engine.plan(target, policy, options.strict);
  // A selector that matches nothing is found without freezing the target first.
  if (options.strict) await engine.plan(target, policy, true);
  const result = await engine.checkpoint({
    target,
    imageDir: options.imageDir!,
    policy,
    kill: options.kill,
    strict: options.strict,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(advice ? { advice } : {}),
  });
  for (const warning of result.warnings) options.logger?.warn(warning);
  return result;
}

function targetOf({ pid, ipcNs }: CheckpointOptions): CheckpointTarget {
  if ((pid === undefined) === (ipcNs === undefined)) throw new CrError('checkpoint: give a pid or an ipcNs (an nsfs path), one of them', ExitCode.Usage);
  return pid === undefined ? { kind: 'ipc-ns', path: ipcNs! } : { kind: 'process', pid };
}

/** The options that select what is saved, as the config layers the CLI's flags stand for. */
function selectionLayers(options: CheckpointOptions): Record<string, CrConfig> {
  const layers: Record<string, CrConfig> = {};
  for (const name of ['only', 'include', 'exclude', 'external'] as const) {
    const list = options[name];
    if (list !== undefined) layers[name] = { checkpoint: { [name]: [...list] } };
  }
  return layers;
}

/** The process's advice; a file another user could have written is passed over with a warning. */
function adviceOf(kernel: Kernel, pid: number, logger: Logger | undefined) {
  kernel.procfs.assertUserProcess(pid);
  const { advice, warnings } = readAdvice(adviceDir(), kernel, pid);
  for (const w of warnings) logger?.warn(w);
  return advice;
}
