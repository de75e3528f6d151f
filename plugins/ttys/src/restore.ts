import { KernelError, installDescription, type Kernel, type RemoteTask, type RestoreContext } from '@cr/core';
import { TASKS } from '@cr/plugin-tasks';
import { closeSync } from 'node:fs';
import type { PtyRecord } from './record.js';

const O_ACCMODE = 3;

/** A restored pair: cr's descriptor on its slave kept for the controlling terminal, until resume (or a rollback) closes it. */
export interface RestoredPty {
  slave: number | undefined;
  close(): void;
}

/**
 * A new pair with the saved index and settings, each saved description opened again on it and
 * given to every process holding it, the master's unread output and the slave side's unread
 * input given back, then packet mode,
 * exclusive mode and the lock as they were.
 */
export async function restorePty(kernel: Kernel, record: PtyRecord, ctx: RestoreContext): Promise<RestoredPty> {
  const { ttys } = kernel;
  const target = `pty ${record.index} (${ctx.key})`;
  const output = Buffer.alloc(record.output);
  if (record.output > 0) await ctx.readBlobInto('output', output);
  const input = Buffer.alloc(record.input ?? 0);
  if (input.length > 0) await ctx.readBlobInto('input', input);
  const master = ttys.openPty(record.index, target);
  const slaves: number[] = [];
  try {
    ttys.setSettings(master, record.termios, record.winsize, target);
    ttys.setLocked(master, false, target);
    for (const d of record.descriptions) {
      const local = d.end === 'master' ? master : ttys.openSlave(master, d.flags, target);
      if (d.end === 'slave') slaves.push(local);
      for (const { pid, fds } of d.holders) {
        const task = TASKS.restored(ctx, pid)?.task;
        if (task) installDescription(task, local, fds, d.flags & ~O_ACCMODE);
      }
    }
    const controls = record.session !== 0 && TASKS.restored(ctx, record.session) !== undefined;
    if (slaves.length === 0 && (controls || record.output > 0 || input.length > 0)) slaves.push(ttys.openSlave(master, 2, target));
    if (record.output > 0) ttys.putOutput(master, slaves[0]!, record.termios, output, target);
    if (input.length > 0) ttys.putInput(master, slaves[0]!, record.termios, input, target);
    ttys.setPacket(master, record.packet, target);
    if (record.exclusive && slaves.length > 0) ttys.setExclusive(slaves[0]!, target);
    if (record.locked) ttys.setLocked(master, true, target);
    const kept = controls ? slaves.shift() : undefined;
    return keptSlave(kept);
  } finally {
    for (const fd of [master, ...slaves]) closeSync(fd);
  }
}

/** cr's slave descriptor kept until resume, closed once however often `close` is called (resume, then a rollback). */
function keptSlave(fd: number | undefined): RestoredPty {
  let open = fd !== undefined;
  return {
    slave: fd,
    close: () => {
      if (open) closeSync(fd!);
      open = false;
    },
  };
}

/**
 * Makes the pair the controlling terminal of the session it controlled, when its leader was
 * restored: run by the leader (TIOCSCTTY), after its setsid (`settle` makes it now if it was
 * still pending), then the foreground group again. The processes of the session made before
 * (forked while the tree was rebuilt) do not get it as theirs: the kernel gives a controlling
 * terminal to a process only by fork from one that has it, or to a session leader.
 */
export function setControllingTerminal(kernel: Kernel, record: PtyRecord, restored: RestoredPty, ctx: RestoreContext): void {
  const leader = TASKS.restored(ctx, record.session);
  if (!leader || restored.slave === undefined) return;
  leader.tree.settle(record.session);
  const fd = leader.task.pullFd(restored.slave);
  try {
    kernel.ttys.setControllingTerminal(leader.task, fd);
    if (record.foreground !== 0 && record.foreground !== record.session) setForeground(kernel, leader.task, fd, record.foreground, ctx);
  } finally {
    leader.task.close(fd);
  }
}

/** The foreground group, when it still exists: one whose processes had all exited is left to the leader's. */
function setForeground(kernel: Kernel, task: RemoteTask, fd: number, group: number, ctx: RestoreContext): void {
  try {
    kernel.ttys.setForeground(task, fd, group);
  } catch (err) {
    if (!(err instanceof KernelError) || (err.code !== 'ESRCH' && err.code !== 'EPERM')) throw err;
    ctx.log.warn({ group }, `the foreground process group ${group} is gone; the session leader's group is the foreground`);
  }
}
