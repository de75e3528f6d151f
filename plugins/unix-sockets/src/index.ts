import { closeSync, lstatSync } from 'node:fs';
import {
  AF_UNIX,
  Kernel,
  PLUGIN_API_VERSION,
  SOCK_DGRAM,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOL_SOCKET,
  descriptionProblems,
  descriptionsOf,
  inject,
  injectable,
  installDescription,
  socketInode,
  withFd,
  type CollectedObject,
  type OpenDescription,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SocketAddress,
  type UnixSocketDiag,
} from '@cr/core';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { unixSocketRecordSchema, type UnixEnd, type UnixName, type UnixSocketRecord } from './record.js';

export { unixSocketRecordSchema, type UnixSocketRecord } from './record.js';

const SO_PASSCRED = 16;
const STATE_LISTEN = 10;
const TYPES = { stream: SOCK_STREAM, dgram: SOCK_DGRAM, seqpacket: SOCK_SEQPACKET } as const;
type TypeName = keyof typeof TYPES;
const typeName = (type: number): TypeName => (Object.entries(TYPES).find(([, n]) => n === type)?.[0] ?? 'stream') as TypeName;

/**
 * Whether a socket is connected: it has a peer. Not its state, which a datagram socket shares with
 * one that connects to it (both ESTABLISHED), and a stream socket keeps when its peer is gone.
 */
const connected = (diag: UnixSocketDiag | undefined) => diag !== undefined && diag.state !== STATE_LISTEN && diag.peer !== 0;

/** One socket of an object: its description in the process and what sock_diag says of it. */
interface End {
  description: OpenDescription;
  diag: UnixSocketDiag | undefined;
}

/** A unix socket being checkpointed, with the other end when the process holds both. */
export interface UnixSocketHandle {
  pid: number;
  ends: End[];
}

const nameOf = (address: SocketAddress | undefined): UnixName | undefined =>
  address && 'path' in address ? { path: address.path } : address && 'abstract' in address ? { abstract: address.abstract } : undefined;
const shown = (name: UnixName | undefined) => (!name ? 'an unnamed socket' : 'path' in name ? name.path : `@${Buffer.from(name.abstract, 'hex').toString('utf8')}`);
const addressOf = (name: UnixName): SocketAddress => ({ family: 'unix', ...name });

/**
 * Unix sockets: two connected sockets the process both holds (a socketpair, or both ends of a
 * connection it made to itself) with the messages queued each way; a listener with its name (a
 * path, re-created, or an abstract name) and backlog; a datagram socket, bound or not, connected
 * to a named socket or not, with its queued messages. Every descriptor on each, as the other
 * descriptor plugins do. The queues are read with MSG_PEEK through cr's copy of a descriptor,
 * so the program keeps its messages. A connection to a socket outside the process, connections
 * a listener has not accepted yet, and descriptors in flight (SCM_RIGHTS) are refused by name;
 * a connected socket on stdin, stdout or stderr is left to the files plugin, which gives it again.
 */
@injectable()
export class UnixSocketsPlugin implements ResourcePlugin<UnixSocketRecord, UnixSocketHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'unix-sockets';
  readonly version = 1;
  readonly description = 'unix sockets: pairs with their queued messages, listeners, datagram sockets; names, backlog, flags, every descriptor';
  readonly collectsFrom = [TASKS.type];
  readonly selectableBy = { pid: 'uint', fd: 'uint' } as const;
  readonly recordSchema = unixSocketRecordSchema;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<UnixSocketHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    const sockets = descriptionsOf(this.kernel, pid, task.fds(), (info) => info.kind.kind === 'socket' && this.kernel.withFdOf(pid, info.fd, (fd, target) => this.kernel.sockets.kind(fd, target).family === AF_UNIX));
    if (sockets.length === 0) return [];
    const diags = this.kernel.sockDiag.unix();
    const byInode = new Map(sockets.map((d) => [socketInode(d.info), d]));
    const taken = new Set<OpenDescription>();
    const objects: CollectedObject<UnixSocketHandle>[] = [];
    for (const description of sockets) {
      if (taken.has(description)) continue;
      const inode = socketInode(description.info);
      const diag = diags.get(inode);
      const other = diag && byInode.get(diag.peer);
      const pair = other && other !== description && diags.get(diag.peer)?.peer === inode ? other : undefined;
      const ends = pair ? [description, pair] : [description];
      ends.forEach((d) => taken.add(d));
      // stdin, stdout or stderr connected outside the process is the files plugin's: it is given again at restore.
      if (!pair && connected(diag) && description.fds.every((d) => d.fd <= 2)) continue;
      objects.push({
        id: `${pid}:${description.info.fd}`,
        handle: { pid, ends: ends.map((d) => ({ description: d, diag: diags.get(socketInode(d.info)) })) },
        attributes: { pid, fd: description.info.fd },
        claims: ends.flatMap((d) => d.fds.map((n) => `fd:${pid}:${n.fd}`)),
      });
    }
    return objects;
  }

  refusals(node: ResourceNode<UnixSocketHandle>): string[] {
    const { pid, ends } = node.handle;
    return ends.flatMap(({ description, diag }) => {
      const fd = description.info.fd;
      const where = `PID ${pid}: fd ${fd}`;
      const leaveOut = `or leave it out with --exclude unix-sockets:fd=${node.handle.ends[0]!.description.info.fd}`;
      if (!diag) return [`${where} is a unix socket sock_diag does not show in cr's network namespace; cr cannot checkpoint it`];
      return this.kernel.withFdOf(pid, fd, (local, target) => {
        const type = typeName(diag.type);
        const refusals: string[] = [];
        if (diag.state === STATE_LISTEN && diag.queued > 0) {
          refusals.push(`${where} is a unix ${type} listener on ${shown(nameOf(this.kernel.sockets.localAddress(local, target)))} with ${diag.queued} connection(s) not accepted yet, which cr cannot checkpoint; checkpoint when they are accepted, ${leaveOut}`);
        }
        if (connected(diag) && ends.length === 1) {
          const peer = nameOf(this.kernel.sockets.peerAddress(local, target));
          if (type !== 'dgram' || !peer) {
            refusals.push(`${where} is a unix ${type} socket connected to ${peer ? shown(peer) : `an unnamed socket (socket:[${diag.peer}])`}, outside the process; cr cannot restore that connection; close it first, ${leaveOut}`);
          }
        }
        if (diag.state !== STATE_LISTEN && diag.queued > 0) {
          const { withFds } = this.kernel.sockets.peekQueue(local, diag.type, target);
          if (withFds) refusals.push(`${where} is a unix ${type} socket with descriptors (SCM_RIGHTS) or credentials in flight in its queue, which cr cannot checkpoint yet; let the program read them first, ${leaveOut}`);
          else if (ends.length === 1 && type !== 'dgram') refusals.push(`${where} is a unix ${type} socket whose peer is gone, with ${diag.queued} byte(s) still queued, which cr cannot put back; ${leaveOut.replace(/^or /, '')}`);
          // Queued datagrams come back sent to the socket's name: one without a name cannot get them.
          else if (ends.length === 1 && !nameOf(this.kernel.sockets.localAddress(local, target))) refusals.push(`${where} is an unnamed unix datagram socket with messages queued, which cr cannot put back; let the program read them first, ${leaveOut}`);
        }
        return refusals;
      });
    });
  }

  save(node: ResourceNode<UnixSocketHandle>): UnixSocketRecord {
    const { pid, ends } = node.handle;
    return { type: typeName(ends[0]!.diag?.type ?? SOCK_STREAM), ends: ends.map((end) => this.saveEnd(pid, end, ends.length === 2)) };
  }

  checkRecord(record: UnixSocketRecord, ctx: RecordCheckContext): string[] {
    const fds = record.ends.flatMap((e) => e.fds);
    const problems = descriptionProblems(fds, ctx);
    if (record.ends.length === 2 && record.ends.some((e) => e.state !== 'connected')) problems.push('its two sockets are not both connected');
    return problems;
  }

  restore(record: UnixSocketRecord, ctx: RestoreContext): void {
    const task = restoredTaskOf(ctx);
    const target = `a unix socket of PID ${task.pid}`;
    const type = TYPES[record.type];
    const sockets = this.kernel.sockets;
    const locals: number[] = [];
    try {
      if (record.ends.length === 2) {
        locals.push(...sockets.pair(type, target));
        // What one end had queued to read, its peer sends again.
        record.ends.forEach((end, i) => end.queue.forEach((m) => sockets.send(locals[1 - i]!, Buffer.from(m, 'base64'), target)));
      } else {
        locals.push(this.lone(record.ends[0]!, type, target));
      }
      record.ends.forEach((end, i) => {
        if (end.passcred) sockets.setIntOption(locals[i]!, SOL_SOCKET, SO_PASSCRED, 1, target);
        installDescription(task, locals[i]!, end.fds, end.statusFlags);
      });
    } finally {
      locals.forEach((fd) => closeSync(fd));
    }
  }

  /**
   * A datagram socket connected to a named socket is connected once every socket of the process
   * is back: the one it is connected to may be the process's own, restored after it.
   */
  resume(record: UnixSocketRecord, _restored: void, ctx: RestoreContext): void {
    const end = record.ends[0]!;
    if (record.ends.length !== 1 || !end.peer) return;
    const task = restoredTaskOf(ctx);
    const fd = end.fds[0]!.fd;
    this.kernel.withFdOf(task.pid, fd, (local, target) => this.kernel.sockets.connect(local, addressOf(end.peer!), `${target} (to ${shown(end.peer)})`));
  }

  private saveEnd(pid: number, { description, diag }: End, paired: boolean): UnixEnd {
    const fd = description.info.fd;
    return this.kernel.withFdOf(pid, fd, (local, target) => {
      const sockets = this.kernel.sockets;
      const name = paired ? undefined : nameOf(sockets.localAddress(local, target));
      const state = diag?.state === STATE_LISTEN ? 'listen' : connected(diag) ? 'connected' : 'unconnected';
      const peer = !paired && state === 'connected' ? nameOf(sockets.peerAddress(local, target)) : undefined;
      const file = name && 'path' in name ? socketFile(name.path, diag?.fileInode) : undefined;
      const queue = state === 'listen' || !diag?.queued ? [] : sockets.peekQueue(local, diag.type, target).messages.map((m) => m.toString('base64'));
      return {
        state,
        ...(name ? { name } : {}),
        ...(file ? { file } : {}),
        ...(peer ? { peer } : {}),
        ...(state === 'listen' ? { backlog: diag?.backlog ?? 0 } : {}),
        passcred: sockets.intOption(local, SOL_SOCKET, SO_PASSCRED, target) !== 0,
        queue,
        statusFlags: description.statusFlags,
        fds: description.fds,
      };
    });
  }

  /** A socket on its own: bound, listening, and holding its queued datagrams again. */
  private lone(end: UnixEnd, type: number, target: string): number {
    const sockets = this.kernel.sockets;
    const fd = sockets.create({ family: AF_UNIX, type, protocol: 0 }, target);
    try {
      const named = `${target} (${shown(end.name)})`;
      if (end.name && 'path' in end.name) {
        const live = new Set([...this.kernel.sockDiag.unix().values()].flatMap((d) => (d.fileInode ? [d.fileInode] : [])));
        sockets.bindPath(fd, end.name.path, end.file, live, named);
      } else if (end.name) {
        sockets.bind(fd, addressOf(end.name), named);
      }
      if (end.state === 'listen') sockets.listen(fd, end.backlog ?? 0, named);
      if (end.queue.length > 0 && end.name) {
        withFd(sockets.create({ family: AF_UNIX, type, protocol: 0 }, target), (sender) => {
          sockets.connect(sender, addressOf(end.name!), named);
          for (const m of end.queue) sockets.send(sender, Buffer.from(m, 'base64'), named);
        });
      }
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

}

/** The owner and mode of a bound socket's file, when the path still holds the socket's own file. */
function socketFile(path: string, inode: number | undefined): UnixEnd['file'] {
  try {
    const st = lstatSync(path);
    return st.ino === inode ? { mode: st.mode, uid: st.uid, gid: st.gid } : undefined;
  } catch {
    return undefined;
  }
}

export default UnixSocketsPlugin;
