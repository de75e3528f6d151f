import type { Kernel, RemoteTask } from '@cr/core';
import type { TasksRecord, ThreadRecord } from './record.js';
import { altStackOf, rseqOf, savedRegisters, schedulingOf } from './save.js';
import { toHex } from './hex.js';

/**
 * What each thread of a stopped process has of its own, beyond what `readTaskState` saves of the
 * main thread: the main thread's exit futex and robust list, and a record for every other thread.
 */
export function readThreads(kernel: Kernel, main: RemoteTask, others: readonly RemoteTask[]): Pick<TasksRecord, 'clearChildTid' | 'robustList' | 'threads'> {
  return { ...threadLinks(kernel, main), ...(others.length > 0 ? { threads: others.map((task) => readThreadState(kernel, task)) } : {}) };
}

function readThreadState(kernel: Kernel, task: RemoteTask): ThreadRecord {
  const stat = kernel.procfs.stat(task.pid);
  return {
    tid: task.pid,
    comm: stat.comm,
    ...savedRegisters(task),
    xstate: task.xstate().toString('base64'),
    blocked: toHex(task.blockedSignals()),
    pending: task.pendingSignals(false).map((info) => info.toString('base64')),
    altStack: altStackOf(task),
    ...rseqOf(task),
    ...threadLinks(kernel, task),
    scheduling: schedulingOf(stat, kernel.procfs.status(task.pid)),
  };
}

/** The thread's links to its own memory that the kernel acts on when it exits. */
function threadLinks(kernel: Kernel, task: RemoteTask): Required<Pick<ThreadRecord, 'clearChildTid' | 'robustList'>> {
  const { head, length } = kernel.robustList(task.pid);
  return { clearChildTid: toHex(task.tidAddress()), robustList: { head: toHex(head), length: toHex(length) } };
}
