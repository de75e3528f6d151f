import { UnsupportedError } from '@cr/core';

/** Where a process of a tree sits: its parent, process group and session. */
export interface TreeLinks {
  pid: number;
  ppid: number;
  pgid: number;
  sid: number;
  comm: string;
}

/** How a process whose session or group leader had exited is made: through a helper with the leader's PID. */
export interface EnterVia {
  pid: number;
  session: boolean;
}

/**
 * How restore puts `task` into its session and group, or a refusal naming the process. Restore
 * makes every process by fork inside its restored parent, so a process starts in its parent's
 * session and group; a session leader calls setsid (after making the children that kept its old
 * session); a group leader calls setpgid(0, 0), and the members join with setpgid once every
 * process exists. A session or group whose leader has exited is made by a helper with the
 * leader's PID, a child of the parent, that calls setsid or setpgid(0, 0), makes the process
 * (as its parent's child) and exits: returned as `EnterVia` for the processes that enter it
 * from outside. The session and group the root was in, led from outside the tree, are cr
 * restore's for the restored tree, as for a single restored process.
 */
export function entryOf(task: TreeLinks, tree: ReadonlyMap<number, TreeLinks>, root: TreeLinks): EnterVia | undefined {
  const who = `PID ${task.pid} (${task.comm})`;
  if (task.pid === root.pid) return undefined;
  const parent = tree.get(task.ppid);
  if (!parent) return undefined; // checked by its parent's presence (requires)
  const oldSessionOfParent = parent.pid === root.pid ? (sid: number) => !tree.has(sid) : (sid: number) => sid === tree.get(parent.ppid)?.sid;
  const sessionOk = task.sid === task.pid || task.sid === parent.sid || (parent.sid === parent.pid && oldSessionOfParent(task.sid));
  const deadLeader = (pid: number) => !tree.has(pid) && pid !== root.sid && pid !== root.pgid;
  if (!sessionOk) {
    const entries = [...tree.values()].filter((t) => t.sid === task.sid && tree.get(t.ppid)?.sid !== task.sid);
    if (!deadLeader(task.sid) || entries.length > 1 || (task.pgid !== task.sid && task.pgid !== task.pid)) {
      throw new UnsupportedError(
        `${who} is in session ${task.sid}, which cr cannot recreate: its leader is not below PID ${root.pid}, and ` +
          `${entries.length > 1 ? `${entries.length} processes of the tree entered it from outside` : "the process is not in the session's own group or a group of its own"}`,
      );
    }
    return { pid: task.sid, session: true };
  }
  const leader = tree.get(task.pgid);
  const outside = leader === undefined && task.pgid === root.pgid && task.sid === root.sid;
  if (task.pgid === task.pid || outside || leader?.sid === task.sid || parent.pgid === task.pgid) return undefined;
  if (leader === undefined && deadLeader(task.pgid) && task.sid === parent.sid) return { pid: task.pgid, session: false };
  throw new UnsupportedError(
    `${who} is in process group ${task.pgid}, whose leader is not below PID ${root.pid} or is in another session; cr cannot recreate that group`,
  );
}
