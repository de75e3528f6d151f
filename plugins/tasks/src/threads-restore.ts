import { PR_SET_TIMERSLACK, type Kernel, type RemoteTask } from '@cr/core';
import type { LiveTaskRecord, ThreadRecord } from './record.js';
import { fromHex } from './hex.js';
import { restoreAltStack, restoreScheduling } from './restore.js';

/** A thread made again in a restored process, stopped, with the record it is restored from. */
export interface RestoredThread {
  readonly task: RemoteTask;
  readonly record: ThreadRecord;
}

/**
 * Gives the main thread its exit futex and robust list back, then makes every other saved thread
 * again with its thread id, from `leader` (the restored process, its memory and files back), and
 * gives each the state it has of its own: name, alternate signal stack, scheduling and affinity,
 * timer slack, rseq, exit futex, robust list, its own pending signals and its mask. Its credentials and
 * registers come last (see resumeTask). A failure leaves the threads made so far to the
 * process's rollback, which kills them with it.
 */
export function createThreads(kernel: Kernel, leader: RemoteTask, record: LiveTaskRecord): RestoredThread[] {
  // A main thread that had exited has its exit done: when it exits again, no word of the program's is cleared.
  if (record.mainThreadExited) leader.setTidAddress(0n);
  else if (record.clearChildTid !== undefined) leader.setTidAddress(fromHex(record.clearChildTid));
  if (record.robustList) leader.setRobustList(fromHex(record.robustList.head), fromHex(record.robustList.length));
  return (record.threads ?? []).map((thread) => {
    const task = kernel.createThread(leader, thread.tid);
    restoreThreadState(kernel, task, thread);
    return { task, record: thread };
  });
}

function restoreThreadState(kernel: Kernel, task: RemoteTask, thread: ThreadRecord): void {
  task.together(() => {
    task.setName(thread.comm);
    restoreAltStack(task, thread.altStack);
    restoreScheduling(kernel, task, thread.scheduling);
    if (thread.timerSlackNs !== undefined) task.setPrctl('prctl(PR_SET_TIMERSLACK)', PR_SET_TIMERSLACK, thread.timerSlackNs);
    if (thread.rseq) task.registerRseq(fromHex(thread.rseq.address), thread.rseq.size, thread.rseq.signature);
    task.setTidAddress(fromHex(thread.clearChildTid));
    task.setRobustList(fromHex(thread.robustList.head), fromHex(thread.robustList.length));
    for (const siginfo of thread.pending) task.queueSignal(Buffer.from(siginfo, 'base64'), false);
  });
  task.setBlockedSignals(fromHex(thread.blocked));
}
