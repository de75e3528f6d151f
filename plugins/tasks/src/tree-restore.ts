import { closeSync } from 'node:fs';
import { O_CLOEXEC, TargetError, type Kernel, type RemoteTask } from '@cr/core';
import { isZombieRecord, type TasksRecord } from './record.js';
import type { SharedWithParent } from './sharing.js';

/** How long a restored zombie may take to exit before the tree is let run. */
const ZOMBIE_EXIT_MS = 5000;

interface Member {
  task: RemoteTask;
  record: TasksRecord;
  /** Makes its seed again, by fork inside its parent: for a child of a restored parent. */
  remake: (() => RemoteTask) | undefined;
  /** Its threads other than the main one, made at resume. */
  threads: RemoteTask[];
}

/**
 * The processes of one restored tree, from its root's restore until they all run. Every process
 * is a stopped seed until the end: a child is made by fork inside its parent's seed (so it is that
 * parent's child, in its session and group), a session leader calls setsid only once the
 * children that kept its old session exist, and the whole tree is let go at once, when the
 * root is resumed, the last of the tree (resume runs in reverse restore order).
 */
export class RestoredTree {
  private readonly members = new Map<number, Member>();
  private readonly pendingSetsid = new Set<number>();
  /** Groups a helper made, whose leader had exited. */
  private readonly groups = new Set<number>();
  /** cr's own process group: the one the root's group stands for when its leader was not saved. */
  private readonly outsideGroup: number;

  constructor(
    private readonly kernel: Kernel,
    readonly root: number,
  ) {
    this.outsideGroup = kernel.procfs.stat(process.pid).pgid;
  }

  /**
   * The seed of `record` as a child of its restored parent `parent`: the parent first leaves its
   * old session if this child is in the new one.
   */
  createChild(parent: RemoteTask, record: TasksRecord): RemoteTask {
    if (record.sid === parent.pid) this.leaveOldSession(parent.pid);
    const via = record.enterVia;
    const share = isZombieRecord(record) ? [] : (record.sharesWithParent ?? []);
    if (!via || this.groups.has(via.pid)) return this.kernel.createChildSeed(parent, record.pid, false, share);
    return this.createThroughHelper(parent, record.pid, via, share);
  }

  /**
   * A session or group whose leader had exited: a helper with the leader's PID, a child of
   * `parent`, calls setsid or setpgid(0, 0) and makes the process as `parent`'s child; then it
   * exits and `parent` reaps it. Later members of a group join it in `settle`.
   */
  private createThroughHelper(parent: RemoteTask, pid: number, via: { pid: number; session: boolean }, share: readonly SharedWithParent[]): RemoteTask {
    // The helper shares what the process shares with the parent, and passes it on.
    const helper = this.kernel.createChildSeed(parent, via.pid, false, share);
    let child: RemoteTask;
    try {
      if (via.session) helper.setsid();
      else helper.setpgid(0);
      child = this.kernel.createChildSeed(helper, pid, true, share);
    } catch (err) {
      helper.kill();
      throw err;
    }
    helper.exitOnRelease(0);
    helper.release();
    parent.reap(via.pid);
    this.groups.add(via.pid);
    return child;
  }

  /** Takes a new seed in: a session leader calls setsid later (see createChild), a group leader setpgid now. */
  add(task: RemoteTask, record: TasksRecord, remake?: () => RemoteTask): void {
    this.members.set(record.pid, { task, record, threads: [], remake });
    this.place(task, record);
  }

  /**
   * Makes process `restored` again by a new fork of its parent, once the parent's memory is back:
   * its private memory is then the parent's, shared copy-on-write as after the program's own fork,
   * for the mm plugin to keep where it is the same. The old seed is killed and reaped by the
   * parent. The descriptors restored into it so far move to the new seed, on the same numbers.
   * Only a live process with no child in the tree (whose children a new fork would not have),
   * made straight by its parent (not through a session or group helper), holding no file lock
   * (which its death would release); false otherwise.
   */
  refork(restored: { task: RemoteTask; pid: number }): boolean {
    const member = this.members.get(restored.pid);
    if (!member?.remake || isZombieRecord(member.record) || member.record.enterVia) return false;
    if ([...this.members.values()].some((m) => m.record.ppid === restored.pid)) return false;
    const parent = this.members.get(member.record.ppid);
    if (!parent) return false;
    const ownTable = !(member.record.sharesWithParent ?? []).includes('files');
    const fds = ownTable ? this.kernel.procfs.fdFlags(restored.pid) : [];
    if (fds.some((fd) => fd.locked)) return false;
    const held = fds.map((fd) => ({ fd: fd.fd, cloexec: (fd.flags & O_CLOEXEC) !== 0, local: this.kernel.takeFd(restored.pid, fd.fd) }));
    try {
      member.task.kill();
      parent.task.reap(restored.pid);
      member.task = member.remake();
      restored.task = member.task;
      this.place(member.task, member.record);
      member.task.installFds(held.map(({ fd, cloexec, local }) => ({ localFd: local, fd, closeOnExec: cloexec })));
    } finally {
      for (const { local } of held) closeSync(local);
    }
    return true;
  }

  /** The parent process `pid` was restored as the child of, if it is in the tree. */
  parentOf(pid: number): number | undefined {
    const ppid = this.members.get(pid)?.record.ppid;
    return ppid !== undefined && this.members.has(ppid) ? ppid : undefined;
  }

  private place(task: RemoteTask, record: TasksRecord): void {
    const sessionLeader = isZombieRecord(record) ? record.sid === record.pid : record.sessionLeader;
    const groupLeader = isZombieRecord(record) ? record.pgid === record.pid : record.groupLeader;
    if (sessionLeader) this.pendingSetsid.add(record.pid);
    else if (groupLeader) task.setpgid(0);
  }

  /**
   * Puts the process into its session and group, once every process of the tree exists: the
   * pending setsid of a leader, and setpgid into the group it was in (cr's own, when that group's
   * leader was outside the tree).
   */
  settle(pid: number): void {
    this.leaveOldSession(pid);
    const { task, record } = this.members.get(pid)!;
    if (record.pgid === undefined || record.pgid === pid) return;
    const group = this.members.has(record.pgid) || this.groups.has(record.pgid) ? record.pgid : this.outsideGroup;
    if (this.kernel.procfs.stat(pid).pgid !== group) task.setpgid(group);
  }

  /**
   * Lets every process of the tree run: the restored zombies first, which exit at once with
   * their saved status (their parents, still stopped, can reap them as soon as they run), then
   * everything else.
   */
  /** The threads of process `pid`, ready to run with it. */
  addThreads(pid: number, threads: readonly RemoteTask[]): void {
    this.members.get(pid)!.threads.push(...threads);
  }

  async releaseAll(): Promise<void> {
    const zombies = [...this.members.values()].filter((m) => isZombieRecord(m.record));
    for (const z of zombies) z.task.release();
    for (const z of zombies) await this.awaitZombie(z.record.pid);
    const live = [...this.members.values()].filter((m) => !isZombieRecord(m.record)).reverse();
    for (const m of live) {
      // Its threads use its work area (RemoteTask's lender): gone before any of them runs.
      m.task.dropScratch();
      if (!isZombieRecord(m.record) && m.record.stopped !== undefined) m.task.stopOnRelease();
      for (const thread of m.threads) thread.release();
      m.task.release();
    }
  }

  /**
   * After a failed restore killed every process of the tree (children first): their corpses,
   * which the root's death handed to cr (a child subreaper, see seed.ts), are reaped, so that no
   * process of the tree is left behind, not even for the moment PID 1 would take.
   */
  reapKilled(): void {
    for (const pid of this.members.keys()) {
      if (pid === this.root) continue;
      try {
        this.kernel.waitForExit(pid);
      } catch {
        // Reaped already, by its restored parent or by the kill.
      }
    }
  }

  private leaveOldSession(pid: number): void {
    if (!this.pendingSetsid.delete(pid)) return;
    this.members.get(pid)!.task.setsid();
  }

  private async awaitZombie(pid: number): Promise<void> {
    for (let waited = 0; waited < ZOMBIE_EXIT_MS; waited += 10) {
      if (!this.kernel.procfs.isRunning(pid)) return;
      await new Promise((ok) => setTimeout(ok, 10));
    }
    throw new TargetError(`the restored zombie PID ${pid} did not exit within ${ZOMBIE_EXIT_MS / 1000} s`);
  }
}
