import {
  PR_GET_CHILD_SUBREAPER,
  PR_GET_DUMPABLE,
  PR_GET_KEEPCAPS,
  PR_GET_PDEATHSIG,
  PR_GET_THP_DISABLE,
  PR_GET_TIMERSLACK,
  SIGKILL,
  SIGSTOP,
  TASK_READS,
  TaskReads,
  type AltStack,
  type ItimerValue,
  type RemoteTask,
  type SignalAction,
} from '@cr/core';
import { ITIMERS, type LiveTaskRecord } from './record.js';

/** The signals whose dispositions a process has: all but SIGKILL's and SIGSTOP's, which cannot be changed. */
export const DISPOSITION_SIGNALS = Array.from({ length: 64 }, (_, i) => i + 1).filter((s) => s !== SIGKILL && s !== SIGSTOP);

/** A frozen process: the task that stands for it (its main thread, or, when that had exited, another) and its other threads. */
export interface FrozenProcess {
  task: RemoteTask;
  threads: readonly RemoteTask[];
}

/** What save reads of a frozen process by syscalls run inside it; the rest comes from /proc and ptrace. */
export interface ProcessReadings {
  /** Of DISPOSITION_SIGNALS, in order. */
  dispositions: SignalAction[];
  /** Of each interval timer of ITIMERS, in order. */
  itimers: ItimerValue[];
  prctl: Omit<LiveTaskRecord['prctl'], 'noNewPrivs'>;
  /** What each of its tasks has of its own. */
  own: Map<RemoteTask, ThreadReadings>;
}

export interface ThreadReadings {
  altStack: AltStack;
  /** Where the kernel clears the thread id when the thread exits (PR_GET_TID_ADDRESS). */
  clearChildTid: bigint;
  timerSlackNs: number;
}

const makeReads = () => ({
  altStack: TASK_READS.altStack(),
  clearChildTid: TASK_READS.tidAddress(),
  timerSlack: TASK_READS.prctl('prctl(PR_GET_TIMERSLACK)', PR_GET_TIMERSLACK),
  pdeathsig: TASK_READS.prctlInt('prctl(PR_GET_PDEATHSIG)', PR_GET_PDEATHSIG),
  keepCaps: TASK_READS.prctl('prctl(PR_GET_KEEPCAPS)', PR_GET_KEEPCAPS),
  dumpable: TASK_READS.prctl('prctl(PR_GET_DUMPABLE)', PR_GET_DUMPABLE),
  childSubreaper: TASK_READS.prctlInt('prctl(PR_GET_CHILD_SUBREAPER)', PR_GET_CHILD_SUBREAPER),
  thpDisable: TASK_READS.prctl('prctl(PR_GET_THP_DISABLE)', PR_GET_THP_DISABLE),
  itimers: ITIMERS.map((_, which) => TASK_READS.itimer(which)),
  dispositions: DISPOSITION_SIGNALS.map((signal) => TASK_READS.signalAction(signal)),
});

/** The reads, made once, when a checkpoint first reads a task: a tree of 100 processes asks for each 100 times. */
let made: ReturnType<typeof makeReads> | undefined;
const READS = () => (made ??= makeReads());

/**
 * The readings of every process of `processes`, made in all their tasks at once (TaskReads): what
 * a thread has of its own (alternate stack, exit futex, timer slack; parent death signal and
 * keepcaps, which cr saves of the process's task) in that thread, and what the process's threads
 * share (signal dispositions, interval timers, dumpable, child subreaper, THP) in whichever of
 * them has least to do, so that a many-threaded process answers in a few rounds.
 */
export function readFrozenProcesses(processes: readonly FrozenProcess[]): ProcessReadings[] {
  const reads = new TaskReads();
  const pending = processes.map(({ task, threads }) => {
    const all = [task, ...threads];
    const own = all.map((t) => ({
      task: t,
      altStack: reads.add(t, READS().altStack),
      clearChildTid: reads.add(t, READS().clearChildTid),
      timerSlackNs: reads.add(t, READS().timerSlack),
    }));
    const pdeathsig = reads.add(task, READS().pdeathsig);
    const keepCaps = reads.add(task, READS().keepCaps);
    const dumpable = reads.addShared(all, READS().dumpable);
    const childSubreaper = reads.addShared(all, READS().childSubreaper);
    const thpDisable = reads.addShared(all, READS().thpDisable);
    const itimers = READS().itimers.map((read) => reads.addShared(all, read));
    const dispositions = READS().dispositions.map((read) => reads.addShared(all, read));
    return (): ProcessReadings => ({
      dispositions: dispositions.map((answer) => answer()),
      itimers: itimers.map((answer) => answer()),
      prctl: {
        pdeathsig: pdeathsig(),
        dumpable: Number(dumpable()),
        childSubreaper: childSubreaper() !== 0,
        timerSlackNs: Number(own[0]!.timerSlackNs()),
        thpDisable: thpDisable() === 1n,
        keepCaps: keepCaps() === 1n,
      },
      own: new Map(own.map((o) => [o.task, { altStack: o.altStack(), clearChildTid: o.clearChildTid(), timerSlackNs: Number(o.timerSlackNs()) }])),
    });
  });
  reads.run();
  return pending.map((answers) => answers());
}
