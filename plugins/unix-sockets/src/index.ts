import { closeSync, existsSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  AF_UNIX,
  Kernel,
  PLUGIN_API_VERSION,
  SOCK_DGRAM,
  SOCK_SEQPACKET,
  SOCK_STREAM,
  SOL_SOCKET,
  TargetError,
  closeQueue,
  inject,
  injectable,
  installDescription,
  shutdownHow,
  socketInode,
  type CollectedObject,
  type FdInfo,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SocketAddress,
  type SocketQueue,
} from '@cr/core';
import { inheritedPath } from '@cr/descriptor-base';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { connected, groupsOf, socketsOfTree, type HeldSocket, type SocketGroup } from './collect.js';
import { InflightFiles, openInflight } from './in-flight.js';
import { unixSocketRecordSchema, type QueuedMessage, type UnixEnd, type UnixName, type UnixSocketRecord } from './record.js';

export { unixSocketRecordSchema, type UnixSocketRecord } from './record.js';

const SO_PASSCRED = 16;
const O_CLOEXEC = 0o2000000;
const O_ACCMODE = 3;
const STATE_LISTEN = 10;
const TYPES = { stream: SOCK_STREAM, dgram: SOCK_DGRAM, seqpacket: SOCK_SEQPACKET } as const;
type TypeName = keyof typeof TYPES;
const typeName = (type: number): TypeName => (Object.entries(TYPES).find(([, n]) => n === type)?.[0] ?? 'stream') as TypeName;

/** A unix socket (or a connected pair) being checkpointed, and the processes of the checkpoint, among which its files in flight are looked for. */
export interface UnixSocketHandle {
  group: SocketGroup;
  tree: readonly { pid: number; fds(): readonly FdInfo[] }[];
}

/**
 * What restore made and resume finishes: cr's descriptor on each socket, and on the socket that
 * sends each its queue (its peer, or one connected to its name); all closed by resume or rollback.
 */
export interface RestoredUnixSocket {
  sockets: number[];
  senders: (number | undefined)[];
  others: number[];
}

const nameOf = (address: SocketAddress | undefined): UnixName | undefined =>
  address && 'path' in address ? { path: address.path } : address && 'abstract' in address ? { abstract: address.abstract } : undefined;
const shown = (name: UnixName | undefined) => (!name ? 'an unnamed socket' : 'path' in name ? name.path : `@${Buffer.from(name.abstract, 'hex').toString('utf8')}`);
const addressOf = (name: UnixName): SocketAddress => ({ family: 'unix', ...name });
const firstOf = (socket: HeldSocket) => ({ pid: socket.holders[0]!.pid, fd: socket.holders[0]!.fds[0]!.fd });

/**
 * Unix sockets: two connected sockets the processes of the checkpoint hold (a socketpair, kept by
 * one process or shared by parent and child after fork, or both ends of a connection to a
 * listener of the tree) with the messages queued each way; a listener with its name (a path,
 * re-created, or an abstract name) and backlog; a datagram socket, bound or not, connected to a
 * named socket or not, with its queued messages; a stream socket whose peer was closed, with what
 * it has left to read. The queues are read with MSG_PEEK through cr's copy of a descriptor, so
 * the program keeps its messages, with the files in flight in them (SCM_RIGHTS) and their senders'
 * credentials; shutdown state, SO_PASSCRED, buffer sizes, flags, and every descriptor of every
 * process on each. A connection to a socket outside the processes and connections a listener has
 * not accepted yet are refused by name; a connected socket on stdin, stdout or stderr is left to
 * the files plugin, which gives it again.
 */
@injectable()
export class UnixSocketsPlugin implements ResourcePlugin<UnixSocketRecord, UnixSocketHandle, RestoredUnixSocket> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'unix-sockets';
  readonly version = 1;
  readonly description = 'unix sockets: pairs with their queued messages and files in flight, listeners, datagram sockets; names, backlog, shutdown, options, every descriptor';
  readonly collectsFrom = [TASKS.type];
  readonly selectableBy = { pid: 'uint', fd: 'uint' } as const;
  readonly recordSchema = unixSocketRecordSchema;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<UnixSocketHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    const own = task.fds().filter((info) => info.kind.kind === 'socket');
    if (own.length === 0) return [];
    const diags = this.kernel.sockDiag.unix();
    const held = socketsOfTree(task.tree.tasks, diags);
    const tree = task.tree.tasks;
    const groups = groupsOf(pid, held, tree.map((t) => t.pid));
    // A unix socket sock_diag does not list (another network namespace's) is an object too, to be refused by name.
    const unlisted = unlistedSockets(pid, own, diags, (fd) => this.kernel.withFdOf(pid, fd, (local, target) => this.kernel.sockets.kind(local, target).family === AF_UNIX));
    const objects: CollectedObject<UnixSocketHandle>[] = [];
    for (const found of [...groups, ...unlisted.map((socket) => ({ id: `${pid}:${firstOf(socket).fd}`, sockets: [socket] }))]) {
      const group = withoutStdioHolders(found);
      const mine = group?.sockets.flatMap((s) => s.holders.filter((h) => h.pid === pid).flatMap((h) => h.fds)) ?? [];
      if (!group || mine.length === 0) continue;
      const first = firstOf(group.sockets[0]!);
      objects.push({
        id: group.id,
        handle: { group, tree },
        attributes: { pid: first.pid, fd: first.fd },
        claims: mine.map((d) => `fd:${pid}:${d.fd}`),
      });
    }
    return objects;
  }

  refusals(node: ResourceNode<UnixSocketHandle>): string[] {
    const { group, tree } = node.handle;
    const paired = group.sockets.length === 2;
    const leaveOut = `or leave it out with --exclude unix-sockets:fd=${firstOf(group.sockets[0]!).fd}`;
    const inflight = new InflightFiles(this.kernel, tree);
    const queues: SocketQueue[] = [];
    try {
      const refusals = group.sockets.flatMap((socket) => {
        const { pid, fd } = firstOf(socket);
        const where = `PID ${pid}: fd ${fd}`;
        const diag = socket.diag;
        if (!diag) return [`${where} is a unix socket sock_diag does not show in cr's network namespace; cr cannot checkpoint it`];
        return this.kernel.withFdOf(pid, fd, (local, target) => {
          const type = typeName(diag.type);
          const refusals: string[] = [];
          const root = this.kernel.procfs.link(pid, 'root');
          if (root !== '/') {
            // A path in a chroot is the program's, under its root; cr binds and connects from its own.
            const names = [nameOf(this.kernel.sockets.localAddress(local, target)), connected(diag) ? nameOf(this.kernel.sockets.peerAddress(local, target)) : undefined];
            const path = names.find((name) => name !== undefined && 'path' in name);
            if (path) refusals.push(`${where} is a unix ${type} socket on the path ${shown(path)} of a process chrooted in ${root}, which cr cannot restore yet; ${leaveOut.replace(/^or /, '')}`);
          }
          if (diag.state === STATE_LISTEN) {
            if (diag.queued > 0) {
              refusals.push(`${where} is a unix ${type} listener on ${shown(nameOf(this.kernel.sockets.localAddress(local, target)))} with ${diag.queued} connection(s) not accepted yet, which cr cannot checkpoint; checkpoint when they are accepted, ${leaveOut}`);
            }
            return refusals;
          }
          const outside = connected(diag) && !paired && !socket.peerGone ? nameOf(this.kernel.sockets.peerAddress(local, target)) : undefined;
          if (connected(diag) && !paired && !socket.peerGone && !outside) {
            refusals.push(`${where} is a unix ${type} socket connected to an unnamed socket (socket:[${diag.peer}]), outside the checkpointed processes; cr cannot restore that connection; close it first, ${leaveOut}`);
          }
          const queue = this.kernel.sockets.peekQueue(local, diag.type, target);
          queues.push(queue);
          queue.messages.forEach((m) => m.fds.forEach((f) => inflight.indexOf(f, `${where}, a unix ${type} socket,`)));
          if (queue.messages.length > 0 && outside && type !== 'dgram') {
            refusals.push(`${where} is a unix ${type} socket connected to ${shown(outside)}, outside the checkpointed processes, with ${queue.messages.length} message(s) from it not read yet, which cr cannot put back; let the program read them first, ${leaveOut}`);
          } else if (queue.messages.length > 0 && !paired && !socket.peerGone && !nameOf(this.kernel.sockets.localAddress(local, target))) {
            // Queued datagrams come back sent to the socket's name: one without a name cannot get them.
            refusals.push(`${where} is an unnamed unix ${type} socket with messages queued, which cr cannot put back; let the program read them first, ${leaveOut}`);
          }
          return refusals;
        });
      });
      return [...refusals, ...inflight.problems.map((p) => `${p}, ${leaveOut}`)];
    } finally {
      queues.forEach(closeQueue);
    }
  }

  save(node: ResourceNode<UnixSocketHandle>): UnixSocketRecord {
    const { group, tree } = node.handle;
    const inflight = new InflightFiles(this.kernel, tree);
    const queues: SocketQueue[] = [];
    try {
      const objectPid = firstOf(group.sockets[0]!).pid;
      const ends = group.sockets.map((socket) => this.saveEnd(socket, objectPid, group.sockets.length === 2, inflight, queues));
      const files = inflight.files;
      return { type: typeName(group.sockets[0]!.diag?.type ?? SOCK_STREAM), ends, ...(files.length > 0 ? { inflight: files } : {}) };
    } finally {
      queues.forEach(closeQueue);
    }
  }

  checkRecord(record: UnixSocketRecord, ctx: RecordCheckContext): string[] {
    const [pid, fd] = ctx.id.split(':');
    const problems: string[] = [];
    const first = record.ends[0]!;
    if ((first.pid ?? Number(pid)) !== Number(pid) || String(first.fds[0]!.fd) !== fd) problems.push(`its first descriptor is not fd ${fd} of PID ${pid}`);
    const seen = new Set<string>();
    const holders = record.ends.flatMap((end) => [{ pid: end.pid ?? Number(pid), fds: end.fds }, ...(end.holders ?? [])]);
    for (const holderPid of new Set(holders.map((h) => h.pid))) {
      if (!ctx.parents.includes(`tasks:${holderPid}`)) problems.push(`PID ${holderPid} holds it but it does not hang below tasks:${holderPid}`);
    }
    for (const end of record.ends) {
      for (const holder of [{ pid: end.pid ?? Number(pid), fds: end.fds }, ...(end.holders ?? [])]) {
        for (const d of holder.fds) {
          if (seen.has(`${holder.pid}:${d.fd}`)) problems.push(`it names fd ${d.fd} of PID ${holder.pid} twice`);
          seen.add(`${holder.pid}:${d.fd}`);
        }
      }
      const files = end.queue.flatMap((m) => (typeof m === 'string' ? [] : (m.fds ?? [])));
      if (files.some((i) => i >= (record.inflight?.length ?? 0))) problems.push('a queued message names a file in flight the record does not have');
      if (record.ends.length === 1 && !end.peerGone && !end.name && end.queue.length > 0) problems.push('an unnamed socket on its own has messages queued, which nothing could send it');
    }
    if (record.ends.length === 2 && record.ends.some((e) => e.state !== 'connected')) problems.push('its two sockets are not both connected');
    return problems;
  }

  inheritableFds(record: UnixSocketRecord): number[] {
    return record.ends.filter((end) => end.outside).flatMap((end) => end.fds.map((d) => d.fd));
  }

  /** A bound path that holds another kind of file, or whose directory is gone, is refused before anything is changed. */
  preflight(record: UnixSocketRecord, ctx: RestoreContext): void {
    for (const end of record.ends) {
      if (end.outside && !inheritedPath(end.fds, ctx)) {
        const fds = end.fds.map((d) => d.fd);
        throw new TargetError(
          `cannot restore fd ${fds.join(', ')} of PID ${end.pid ?? ctx.key.split(':')[1]}: a unix ${record.type} socket connected to ${shown(end.outside)}, outside the checkpoint; ` +
            `give it with --inherit-fd ${fds[0]}=PATH, the listening socket to connect it to again (PATH, or @NAME for an abstract name; e.g. --inherit-fd ${fds[0]}=${'path' in end.outside ? end.outside.path : shown(end.outside)})`,
        );
      }
      if (!end.name || !('path' in end.name)) continue;
      const { path } = end.name;
      const st = lstatOrUndefined(path);
      if (st && !st.isSocket()) throw new TargetError(`cannot restore ${ctx.key}: ${path} exists and is not a socket; remove it, so that the socket can be bound there again`);
      if (!st && !lstatOrUndefined(dirname(path))?.isDirectory()) throw new TargetError(`cannot restore ${ctx.key}: the socket path ${path} is gone, and so is its directory; make the directory again`);
    }
  }

  restore(record: UnixSocketRecord, ctx: RestoreContext): RestoredUnixSocket {
    const task = restoredTaskOf(ctx);
    const target = `a unix socket of PID ${task.pid}`;
    const type = TYPES[record.type];
    const sockets = this.kernel.sockets;
    const made: RestoredUnixSocket = { sockets: [], senders: [], others: [] };
    try {
      const [first] = record.ends;
      if (record.ends.length === 2) {
        const [a, b] = sockets.pair(type, target);
        made.sockets.push(a, b);
        made.senders.push(b, a);
      } else if (first!.peerGone) {
        // Its peer is closed in resume, once it has sent the queue: the socket then reads end of file, as it did.
        const [socket, peer] = sockets.pair(type, target);
        made.sockets.push(socket);
        made.others.push(peer);
        made.senders.push(peer);
      } else if (first!.outside) {
        made.sockets.push(this.connectedTo(inheritedPath(first!.fds, ctx)!, type, target));
        made.senders.push(undefined);
      } else {
        made.sockets.push(this.lone(first!, type, target));
        const sender = first!.queue.length > 0 && first!.name ? this.senderTo(first!.name, queuedBytes(first!), type, target) : undefined;
        if (sender !== undefined) made.others.push(sender);
        made.senders.push(sender);
      }
      record.ends.forEach((end, i) => {
        const local = made.sockets[i]!;
        if (end.passcred) sockets.setIntOption(local, SOL_SOCKET, SO_PASSCRED, 1, target);
        if (end.buffers) sockets.setBuffers(local, end.buffers, target);
        for (const { pid, fds } of [{ pid: end.pid ?? task.pid, fds: end.fds }, ...(end.holders ?? [])]) {
          const holder = pid === task.pid ? task : TASKS.restored(ctx, pid)?.task;
          if (holder) installDescription(holder, local, fds, end.statusFlags);
        }
      });
      return made;
    } catch (err) {
      closeAll(made);
      throw err;
    }
  }

  /**
   * Once every object is back (the files in flight that processes hold among them): each queue is
   * sent again with its files and credentials, the sockets are shut down as they were, and a
   * datagram socket connected to a named socket is connected again (that socket may be the
   * process's own, restored after it).
   */
  resume(record: UnixSocketRecord, made: RestoredUnixSocket, ctx: RestoreContext): void {
    const target = `${ctx.key}`;
    const sockets = this.kernel.sockets;
    try {
      const files = record.inflight?.length ? openInflight(this.kernel, record.inflight, ctx.key) : [];
      try {
        record.ends.forEach((end, i) => end.queue.forEach((m) => this.sendAgain(made.senders[i]!, m, files, target)));
      } finally {
        files.forEach((fd) => closeSync(fd));
      }
      record.ends.forEach((end, i) => {
        if (end.shutdown && !end.peerGone) sockets.shutdown(made.sockets[i]!, shutdownHow(end.shutdown), target);
      });
      const end = record.ends[0]!;
      if (record.ends.length === 1 && end.peer) sockets.connect(made.sockets[0]!, addressOf(end.peer), `${target} (to ${shown(end.peer)})`);
    } finally {
      closeAll(made);
    }
  }

  rollback(_record: UnixSocketRecord, made: RestoredUnixSocket): void {
    closeAll(made);
  }

  private sendAgain(sender: number, queued: QueuedMessage, files: readonly number[], target: string): void {
    const message = typeof queued === 'string' ? { data: queued } : queued;
    // The sender's credentials, when its process is there to be named (the kernel checks); else cr's own.
    const credentials = message.credentials && existsSync(`/proc/${message.credentials.pid}`) ? { credentials: message.credentials } : {};
    this.kernel.sockets.sendMessage(sender, Buffer.from(message.data, 'base64'), { fds: (message.fds ?? []).map((i) => files[i]!), ...credentials }, target);
  }

  private saveEnd(socket: HeldSocket, objectPid: number, paired: boolean, inflight: InflightFiles, queues: SocketQueue[]): UnixEnd {
    const [first, ...others] = socket.holders;
    const diag = socket.diag!;
    return this.kernel.withFdOf(first!.pid, first!.fds[0]!.fd, (local, target) => {
      const sockets = this.kernel.sockets;
      const name = paired ? undefined : nameOf(sockets.localAddress(local, target));
      const state = diag.state === STATE_LISTEN ? 'listen' : connected(diag) || socket.peerGone ? 'connected' : 'unconnected';
      const peer = !paired && state === 'connected' && !socket.peerGone ? nameOf(sockets.peerAddress(local, target)) : undefined;
      const connection = peer && diag.type === SOCK_DGRAM ? { peer } : peer ? { outside: peer } : {};
      const file = name && 'path' in name ? socketFile(name.path, diag.fileInode) : undefined;
      const queue = state === 'listen' ? { messages: [] } : sockets.peekQueue(local, diag.type, target);
      queues.push(queue);
      return {
        state,
        ...(name ? { name } : {}),
        ...(file ? { file } : {}),
        ...connection,
        ...(socket.peerGone ? { peerGone: true as const } : {}),
        ...(state === 'listen' ? { backlog: diag.backlog } : {}),
        passcred: sockets.intOption(local, SOL_SOCKET, SO_PASSCRED, target) !== 0,
        ...(diag.shutdown && !socket.peerGone ? { shutdown: diag.shutdown } : {}),
        buffers: sockets.buffers(local, target),
        queue: queue.messages.map((m): QueuedMessage => {
          const data = m.data.toString('base64');
          if (m.fds.length === 0 && !m.credentials) return data;
          return { data, ...(m.fds.length > 0 ? { fds: m.fds.map((f) => inflight.indexOf(f, `PID ${first!.pid}: fd ${first!.fds[0]!.fd}`)) } : {}), ...(m.credentials ? { credentials: m.credentials } : {}) };
        }),
        statusFlags: first!.statusFlags,
        ...(first!.pid !== objectPid ? { pid: first!.pid } : {}),
        fds: first!.fds,
        ...(others.length > 0 ? { holders: others.map(({ pid, fds }) => ({ pid, fds })) } : {}),
      };
    });
  }

  /** A socket on its own: bound and listening again. */
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
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** A socket connected to the listener `--inherit-fd FD=PATH` names (`@NAME`: an abstract name), for one that was connected outside the checkpoint. */
  private connectedTo({ fd, path }: { fd: number; path: string }, type: number, target: string): number {
    const name: UnixName = path.startsWith('@') ? { abstract: Buffer.from(path.slice(1)).toString('hex') } : { path };
    const socket = this.kernel.sockets.create({ family: AF_UNIX, type, protocol: 0 }, target);
    try {
      this.kernel.sockets.connect(socket, addressOf(name), `--inherit-fd ${fd}=${path}`);
      return socket;
    } catch (err) {
      closeSync(socket);
      throw err;
    }
  }

  /**
   * A socket connected to a named one, to send it its queued datagrams again: they count against
   * its send buffer until read, which must hold what several senders had queued.
   */
  private senderTo(name: UnixName, bytes: number, type: number, target: string): number {
    const sockets = this.kernel.sockets;
    const sender = sockets.create({ family: AF_UNIX, type, protocol: 0 }, target);
    try {
      const own = sockets.buffers(sender, target);
      if (2 * bytes > own.send) sockets.setBuffers(sender, { ...own, send: 4 * bytes }, target);
      sockets.connect(sender, addressOf(name), `${target} (${shown(name)})`);
      return sender;
    } catch (err) {
      closeSync(sender);
      throw err;
    }
  }
}

/**
 * A socket connected outside the checkpoint that a process has on stdin, stdout or stderr only is,
 * in that process, the files plugin's (given again at restore): the group without those holders,
 * under its first other holder's id, or none when no other holder is left.
 */
function withoutStdioHolders(group: SocketGroup): SocketGroup | undefined {
  const socket = group.sockets[0]!;
  if (group.sockets.length !== 1 || !connected(socket.diag) || socket.peerGone) return group;
  const holders = socket.holders.filter((h) => h.fds.some((d) => d.fd > 2));
  if (holders.length === 0) return undefined;
  return holders.length === socket.holders.length ? group : { id: `${holders[0]!.pid}:${holders[0]!.fds[0]!.fd}`, sockets: [{ ...socket, holders }] };
}

/** The bytes of a socket's queued messages. */
function queuedBytes(end: UnixEnd): number {
  return end.queue.reduce((sum, m) => sum + Buffer.byteLength(typeof m === 'string' ? m : m.data, 'base64'), 0);
}

/** Closes cr's descriptors of a restored object, once. */
function closeAll(made: RestoredUnixSocket): void {
  for (const fd of [...made.sockets.splice(0), ...made.others.splice(0)]) closeSync(fd);
  made.senders.splice(0);
}

/** The sockets of process `pid` that sock_diag does not list and `isUnix` says are unix ones, each with its descriptors. */
function unlistedSockets(pid: number, own: readonly FdInfo[], diags: ReadonlyMap<number, unknown>, isUnix: (fd: number) => boolean): HeldSocket[] {
  const unlisted = new Map<number, HeldSocket>();
  for (const info of own) {
    const inode = socketInode(info);
    const number = { fd: info.fd, closeOnExec: (info.flags & O_CLOEXEC) !== 0 };
    const known = unlisted.get(inode);
    if (known) known.holders[0]!.fds.push(number);
    else if (!diags.has(inode) && isUnix(info.fd)) unlisted.set(inode, { inode, diag: undefined, peerGone: false, holders: [{ pid, fds: [number], statusFlags: info.flags & ~O_CLOEXEC & ~O_ACCMODE }] });
  }
  return [...unlisted.values()];
}

/** The owner and mode of a bound socket's file, when the path still holds the socket's own file. */
function socketFile(path: string, inode: number | undefined): UnixEnd['file'] {
  const st = lstatOrUndefined(path);
  return st && st.ino === inode ? { mode: st.mode, uid: st.uid, gid: st.gid } : undefined;
}

function lstatOrUndefined(path: string) {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}

export default UnixSocketsPlugin;
