import type { CheckpointTarget } from '@cr/schemas';
import { TARGET_IPC_NS, TARGET_PROCESS } from '../plugin/contract.js';
import type { Kernel } from '../kernel/kernel.js';

/** Handle of the root node when the target is a process. */
export interface ProcessTargetHandle {
  pid: number;
}

/** Handle of the root node when the target is an IPC namespace (a path to its nsfs file). */
export interface IpcNsTargetHandle {
  path: string;
}

/** The root node of a checkpoint: checks that the target exists before anything else happens. */
export function rootOf(target: CheckpointTarget, kernel: Kernel): { type: string; id: string; handle: ProcessTargetHandle | IpcNsTargetHandle } {
  if (target.kind === 'process') {
    kernel.procfs.assertUserProcess(target.pid);
    return { type: TARGET_PROCESS, id: String(target.pid), handle: { pid: target.pid } };
  }
  const ns = kernel.namespaces.fromPath(target.path, 'ipc');
  try {
    return { type: TARGET_IPC_NS, id: String(ns.inode), handle: { path: target.path } };
  } finally {
    ns.close();
  }
}
