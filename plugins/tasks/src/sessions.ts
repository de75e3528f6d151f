import { UnsupportedError } from '@cr/core';

/** Where a process of a tree sits: its parent, process group and session. */
export interface TreeLinks {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  comm: string;
}

/**
 * Refuses, naming the process, a session or process group that restore cannot make again.
 * Restore makes every process by fork inside its restored parent, so a process starts in its
 * parent's session and group; a session leader calls setsid (after making the children that kept
 * its old session); a group leader calls setpgid(0, 0), and the members join with setpgid once
 * every process exists. What cannot be made so is a session or group whose leader has exited
 * (it is not in the tree), other than those the root was in, which the restored tree takes from
 * cr restore, as a single restored process does.
 */
export function assertRestorableLinks(task: TreeLinks, tree: ReadonlyMap<number, TreeLinks>, root: TreeLinks): void {
  const who = `PID ${task.pid} (${task.comm})`;
  if (task.pid === root.pid) return;
  const parent = tree.get(task.ppid);
  if (!parent) return; // checked by its parent's presence (requires)
  const oldSessionOfParent = parent.pid === root.pid ? (sid: number) => !tree.has(sid) : (sid: number) => sid === tree.get(parent.ppid)?.sid;
  const sessionOk = task.sid === task.pid || task.sid === parent.sid || (parent.sid === parent.pid && oldSessionOfParent(task.sid));
  if (!sessionOk) {
    throw new UnsupportedError(
      `${who} is in session ${task.sid}, whose leader has exited or is not below PID ${root.pid}; cr cannot recreate a session without its leader yet: checkpoint a tree whose sessions have their leaders`,
    );
  }
  const leader = tree.get(task.pgid);
  const outside = leader === undefined && task.pgid === root.pgid && task.sid === root.sid;
  if (task.pgid !== task.pid && !outside && leader?.sid !== task.sid) {
    throw new UnsupportedError(
      `${who} is in process group ${task.pgid}, whose leader has exited or is not below PID ${root.pid}; cr cannot recreate a process group without its leader yet: checkpoint a tree whose groups have their leaders`,
    );
  }
}

/**
 * Refuses a process that shares with its parent what fork does not share: a process made by
 * clone with CLONE_FILES, CLONE_FS or CLONE_SIGHAND (and not as a thread). Restore makes every
 * process by fork, which would split what they share.
 */
export function assertForkShared(who: string, parent: number, shared: readonly string[]): void {
  const names: Record<string, string> = { files: 'fd table (CLONE_FILES)', fs: 'working directory, root and umask (CLONE_FS)', sighand: 'signal handlers (CLONE_SIGHAND)', vm: 'memory (CLONE_VM)' };
  if (shared.length === 0) return;
  throw new UnsupportedError(
    `${who} shares its ${shared.map((s) => names[s] ?? s).join(', ')} with its parent PID ${parent}; cr restores processes that share only what fork() shares, so far`,
  );
}
