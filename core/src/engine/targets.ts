import type { CheckpointTarget } from '@cr/schemas';
import { TARGET_IPC_NS, TARGET_PROCESS } from '../plugin/contract.js';
import type { Kernel } from '../kernel/kernel.js';
import { refuseUntraceable } from './trace-access.js';

/** Handle of the root node when the target is a process. */
export interface ProcessTargetHandle {
  pid: number;
}

/** Handle of the root node when the target is an IPC namespace (a path to its nsfs file). */
export interface IpcNsTargetHandle {
  path: string;
}

/**
 * The root node of a checkpoint: checks that the target exists, and that cr may trace every
 * process of it, before anything is frozen.
 */
export function rootOf(target: CheckpointTarget, kernel: Kernel): { type: string; id: string; handle: ProcessTargetHandle | IpcNsTargetHandle } {
  if (target.kind === 'process') {
    refuseUntraceable(kernel, target.pid, target.tree !== false);
    return { type: TARGET_PROCESS, id: String(target.pid), handle: { pid: target.pid } };
  }
  const ns = kernel.namespaces.fromPath(target.path, 'ipc');
  try {
    return { type: TARGET_IPC_NS, id: String(ns.inode), handle: { path: target.path } };
  } finally {
    ns.close();
  }
}
