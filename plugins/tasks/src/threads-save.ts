import { isDeepStrictEqual } from 'node:util';
import type { Kernel, ProcessStatus, RemoteTask } from '@cr/core';
import type { LiveTaskRecord, ThreadRecord } from './record.js';
import type { ProcessReadings, ThreadReadings } from './frozen-reads.js';
import { altStackRecord, credentialsOf, rseqOf, savedRegisters, schedulingOf } from './save.js';
import { toHex } from './hex.js';
import { seccompOf } from './seccomp.js';

/**
 * What each thread of stopped process `pid` has of its own, beyond what `readTaskState` saves of
 * the main thread: the main thread's exit futex and robust list, and a record for every other
 * thread. When the main thread had exited, `main` is the first of the others (seizeThreads), and
 * every thread left has a record of its own. `readings` are the process's (readFrozenProcesses),
 * `mainStatus` its /proc/PID/status.
 */
export function readThreads(
  kernel: Kernel,
  pid: number,
  main: RemoteTask,
  others: readonly RemoteTask[],
  readings: ProcessReadings,
  mainStatus: ProcessStatus,
): Pick<LiveTaskRecord, 'clearChildTid' | 'robustList' | 'threads' | 'mainThreadExited'> {
  const ownOf = (task: RemoteTask) => readings.own.get(task)!;
  if (main.pid !== pid) return { mainThreadExited: true, threads: [main, ...others].map((task) => readThreadState(kernel, task, ownOf(task), mainStatus)) };
  const threads = others.map((task) => readThreadState(kernel, task, ownOf(task), mainStatus));
  return { ...threadLinks(kernel, main.pid, ownOf(main)), ...(threads.length > 0 ? { threads } : {}) };
}

function readThreadState(kernel: Kernel, task: RemoteTask, own: ThreadReadings, mainStatus: ProcessStatus): ThreadRecord {
  const stat = kernel.procfs.stat(task.pid);
  const status = kernel.procfs.status(task.pid);
  return {
    tid: task.pid,
    comm: stat.comm,
    ...savedRegisters(task),
    xstate: task.xstate().toString('base64'),
    blocked: toHex(task.blockedSignals()),
    pending: task.pendingSignals(false).map((info) => info.toString('base64')),
    altStack: altStackRecord(own.altStack),
    ...rseqOf(task),
    ...threadLinks(kernel, task.pid, own),
    scheduling: schedulingOf(stat, status),
    timerSlackNs: own.timerSlackNs,
    ...seccompOf(task, status),
    ...ownCredentials(status, mainStatus),
  };
}

/**
 * The kernel keeps credentials per thread; a program's threads share them unless it went around
 * libc (a raw setresuid changes the calling thread only). A thread's own are saved with it.
 */
function ownCredentials(status: ProcessStatus, main: ProcessStatus): Pick<ThreadRecord, 'credentials'> {
  const credentials = credentialsOf(status);
  return isDeepStrictEqual(credentials, credentialsOf(main)) ? {} : { credentials };
}

/** The thread's links to its own memory that the kernel acts on when it exits. */
function threadLinks(kernel: Kernel, tid: number, own: ThreadReadings): Required<Pick<ThreadRecord, 'clearChildTid' | 'robustList'>> {
  const { head, length } = kernel.robustList(tid);
  return { clearChildTid: toHex(own.clearChildTid), robustList: { head: toHex(head), length: toHex(length) } };
}
