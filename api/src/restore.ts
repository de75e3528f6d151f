import { Kernel } from '@cr/core';
import { RestoreEngine, type PhaseTimings, type RestoredObject } from '@cr/core/engine';
import { sessionFor, type CommonOptions } from './options.js';
import { parseMapExternal, typedMapping } from './map-external.js';

export interface RestoreOptions extends CommonOptions {
  /** The image written by `checkpoint`. */
  imageDir: string;
  /** Pin restored namespaces in this directory (`--pin-ns`); needed when the image has namespaces and no process. */
  pinNs?: string;
  /** Restore IPC objects, and put restored processes, into this existing IPC namespace (an nsfs path, `--into-ipc-ns`). */
  intoIpcNs?: string;
  /** Where a restored process's stdio that pointed outside the checkpoint comes from, by fd: a path (`--inherit-fd N=PATH`). */
  inheritFds?: Readonly<Record<number, string>>;
  /** External references to find as other live objects: "TYPE:ATTR=VALUE=ATTR=VALUE" (`--map-external`). */
  mapExternal?: readonly string[];
}

export interface RestoreResult {
  /** Every object restored, in the order it was. */
  restored: RestoredObject[];
  /**
   * The restored processes, running, children of this process: reap each when it ends
   * (`waitForExit`), or it stays a zombie.
   */
  pids: number[];
  /** How long each phase took, in milliseconds (check, preflight, recreate, pin, resume). */
  phases: PhaseTimings;
}

/**
 * Restores an image, as `cr restore --detach` does: reads and checks all of it, checks that every
 * object can be recreated, then recreates them and lets the processes run. Rejects with a CrError
 * subclass; a failed restore has removed everything it created.
 */
export async function restore(options: RestoreOptions): Promise<RestoreResult> {
  const session = await sessionFor(options, options.pinNs === undefined ? {} : { pinNs: { restore: { pinNs: options.pinNs } } });
  const mapExternal = (options.mapExternal ?? []).map((text) => typedMapping(parseMapExternal(text), session.registry));
  const pinDir = session.resolved.config.restore?.pinNs;
  const { restored, phases } = await session.container.resolve(RestoreEngine).restore({
    imageDir: options.imageDir,
    mapExternal,
    ...(options.signal ? { signal: options.signal } : {}),
    options: {
      ...(pinDir ? { pinDir } : {}),
      ...(options.intoIpcNs ? { into: { ipc: options.intoIpcNs } } : {}),
      ...(options.inheritFds ? { inheritFds: options.inheritFds } : {}),
    },
  });
  return { restored, pids: restored.flatMap((r) => (r.pid === undefined ? [] : [r.pid])), phases };
}

/**
 * Waits until a restored process (a child of this process) ends, reaps it, and returns its exit
 * status (128 + the signal's number if a signal ended it). It blocks this thread while it waits:
 * call it once the process has ended or is about to (after a kill).
 */
export function waitForExit(pid: number): number {
  return new Kernel().waitForExit(pid);
}
