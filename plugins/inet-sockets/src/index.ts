import {
  AF_INET,
  AF_INET6,
  Kernel,
  SOCK_DGRAM,
  SOCK_STREAM,
  blobProblems,
  inject,
  injectable,
  socketInode,
  type CollectContext,
  type FdInfo,
  type RecordCheckContext,
  type ResourceNode,
  type RestoreContext,
  type SaveContext,
  type ThawContext,
} from '@cr/core';
import { closeSync } from 'node:fs';
import { DescriptionPlugin, type DescriptionHandle, type DescriptionSite } from '@cr/descriptor-base';
import { restoredTaskOf } from '@cr/plugin-tasks';
import { connectionBlobs, keepForRestore, pause, readPaused, rebuildConnection, resumeConnection, saveConnection, shown, unsentBytes, type PausedConnection } from './connection.js';
import { SOCKET_OPTIONS, appliesTo } from './options.js';
import { bindReclaiming } from './port.js';
import { inetSocketRecordSchema, inetSocketsOptionsSchema, type InetSocketRecord, type InetSocketsOptions } from './record.js';

export { inetSocketRecordSchema, inetSocketsOptionsSchema, type InetSocketRecord, type InetSocketsOptions } from './record.js';

/** A socket being checkpointed, with whether established connections are saved, and the connection cr paused. */
export interface InetSocketHandle extends DescriptionHandle {
  tcpEstablished: boolean;
  paused?: PausedConnection;
}

const TCP_ESTABLISHED = 1;
const TCP_CLOSE = 7;
const TCP_LISTEN = 10;
const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

/**
 * TCP and UDP sockets of cr's network namespace: a listening TCP socket with its address, port,
 * backlog and options, a TCP socket not connected yet, a UDP socket bound and maybe connected,
 * and, with the option `tcpEstablished` (`cr checkpoint --tcp-established`), an established TCP
 * connection with TCP_REPAIR; each with every descriptor the process has on it (see
 * DescriptionPlugin). Each is looked at from cr through a copy of its descriptor. A connection
 * is paused at the freeze (blocked with nftables, then in repair mode), and let go at the thaw,
 * unless the program is killed: then the block stays until restore has made the connection again.
 * Without the option, and in any state but established, a connection is refused by name.
 * Restored as a new socket bound to the same address and port: the port must be free, as it is
 * once the checkpointed program was killed.
 */
@injectable()
export class InetSocketsPlugin extends DescriptionPlugin<InetSocketRecord> {
  readonly type = 'inet-sockets';
  readonly version = 2;
  readonly description = 'TCP listeners and established connections (TCP_REPAIR), UDP sockets: address, port, backlog, options, queues, flags, every descriptor on each';
  readonly recordSchema = inetSocketRecordSchema;
  readonly optionsSchema = inetSocketsOptionsSchema;

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
  }

  override collect(parent: ResourceNode, ctx: CollectContext<InetSocketsOptions>) {
    return super.collect(parent).map((object) => ({ ...object, handle: { ...object.handle, tcpEstablished: ctx.pluginOptions.tcpEstablished } }));
  }

  protected owns(info: FdInfo, pid: number): boolean {
    if (info.kind.kind !== 'socket') return false;
    return this.kernel.withFdOf(pid, info.fd, (fd, target) => {
      const { family, type, protocol } = this.kernel.sockets.kind(fd, target);
      if (family !== AF_INET && family !== AF_INET6) return false;
      const tcp = type === SOCK_STREAM && protocol === IPPROTO_TCP;
      if (!tcp && !(type === SOCK_DGRAM && protocol === IPPROTO_UDP)) return false;
      // A connection on stdin, stdout or stderr (inetd) is the files plugin's: given again at restore.
      return info.fd > 2 || (tcp && this.kernel.sockets.tcpState(fd, target) === TCP_LISTEN);
    });
  }

  refusals(node: ResourceNode<InetSocketHandle>): string[] {
    const { pid, description, tcpEstablished } = node.handle;
    return this.kernel.withFdOf(pid, description.info.fd, (fd, target) => {
      const { type } = this.kernel.sockets.kind(fd, target);
      if (type !== SOCK_STREAM) return [];
      const state = this.kernel.sockets.tcpState(fd, target);
      if (state === TCP_LISTEN || state === TCP_CLOSE) return [];
      const ends = `${shown(this.kernel.sockets.localAddress(fd, target))} -> ${shown(this.kernel.sockets.peerAddress(fd, target))}`;
      const leaveOut = `leave it out with --exclude inet-sockets:fd=${description.info.fd}`;
      if (state === TCP_ESTABLISHED && tcpEstablished) {
        return this.kernel.connectionBlocks.available() ? [] : [`PID ${pid}: fd ${description.info.fd} is an established TCP connection (${ends}), which --tcp-established blocks with nftables while it is saved, but the nft command is not installed; install it (Debian package nftables), or ${leaveOut}`];
      }
      if (state === TCP_ESTABLISHED) {
        return [`PID ${pid}: fd ${description.info.fd} is an established TCP connection (${ends}); pass --tcp-established to save it (with TCP_REPAIR), close it first, or ${leaveOut}`];
      }
      return [`PID ${pid}: fd ${description.info.fd} is a TCP connection in state ${TCP_STATES[state] ?? state} (${ends}), which cr cannot checkpoint (only established connections, with --tcp-established); checkpoint when it is established or closed, or ${leaveOut}`];
    });
  }

  /** An established connection to be saved is paused: blocked (see connection.ts). */
  freeze(node: ResourceNode<InetSocketHandle>): void {
    const { pid, description, tcpEstablished } = node.handle;
    if (!tcpEstablished) return;
    this.kernel.withFdOf(pid, description.info.fd, (fd, target) => {
      const { type } = this.kernel.sockets.kind(fd, target);
      if (type !== SOCK_STREAM || this.kernel.sockets.tcpState(fd, target) !== TCP_ESTABLISHED) return;
      node.handle.paused = pause(this.kernel, fd, target);
    });
  }

  /** A program that carries on gets its connection back; one that is killed leaves it blocked for the restore. */
  thaw(node: ResourceNode<InetSocketHandle>, ctx: ThawContext): void {
    const { pid, description, paused } = node.handle;
    if (!paused) return;
    node.handle.paused = undefined;
    if (ctx.kill) this.kernel.withFdOf(pid, description.info.fd, (fd, target) => keepForRestore(this.kernel, fd, paused, target));
    else paused.block.lift();
  }

  override async save(node: ResourceNode<InetSocketHandle>, ctx: SaveContext): Promise<InetSocketRecord> {
    const record = await super.save(node, ctx);
    const { pid, description, paused } = node.handle;
    if (!paused) return record;
    const state = this.kernel.withFdOf(pid, description.info.fd, (fd, target) => readPaused(this.kernel, fd, paused, target));
    const connection = await saveConnection(state, paused, ctx);
    return { ...record, state: 'established', local: paused.local, peer: paused.peer, options: { ...record.options, reuseaddr: paused.reuseaddr }, connection };
  }

  override checkRecord(record: InetSocketRecord, ctx: RecordCheckContext): string[] {
    const problems = super.checkRecord(record, ctx);
    if ((record.state === 'established') !== (record.connection !== undefined)) problems.push('only an established TCP socket, and every one, has a connection');
    if (record.state === 'established' && (record.protocol !== 'tcp' || !record.local || !record.peer)) problems.push('an established connection is a TCP socket with a local and a peer address');
    return [...problems, ...blobProblems(ctx, record.connection ? connectionBlobs(record.connection) : {})];
  }

  protected state(_fdinfo: Readonly<Record<string, string>>, at: DescriptionSite): Omit<InetSocketRecord, 'statusFlags' | 'fds'> {
    return this.kernel.withFdOf(at.pid, at.fd, (fd, target) => {
      const sockets = this.kernel.sockets;
      const kind = sockets.kind(fd, target);
      const protocol = kind.type === SOCK_STREAM ? 'tcp' : 'udp';
      const family = kind.family === AF_INET6 ? 'inet6' : 'inet';
      const local = sockets.localAddress(fd, target);
      const options: InetSocketRecord['options'] = {};
      for (const [name, option] of Object.entries(SOCKET_OPTIONS)) {
        if (appliesTo(option, protocol, family)) options[name as keyof typeof SOCKET_OPTIONS] = sockets.intOption(fd, option.level, option.name, target);
      }
      const tcpState = protocol === 'tcp' ? sockets.tcpState(fd, target) : undefined;
      const bound = 'port' in local && local.port !== 0 && (tcpState !== TCP_CLOSE || this.holdsItsPort(kind.family, socketInode(at.info)));
      const base = { protocol, family, options, ...(bound ? { local: local as InetSocketRecord['local'] & object } : {}) } as const;
      if (tcpState === TCP_LISTEN) {
        const diag = this.kernel.sockDiag.tcpListeners(kind.family).get(socketInode(at.info));
        if (diag && diag.pending > 0) at.warn(`PID ${at.pid}: fd ${at.fd}, the TCP listener on ${shown(local)}, has ${diag.pending} connection(s) not accepted yet; they are not in the image (if the process is killed before it accepts them, their clients see them reset)`);
        return { ...base, state: 'listen', backlog: diag?.backlog ?? 0 };
      }
      if (protocol === 'udp' && sockets.queuedBytes(fd, target) > 0) at.warn(`PID ${at.pid}: fd ${at.fd}, the UDP socket on ${shown(local)}, has datagrams not read yet; they are not saved, and the restored program will not see them`);
      const peer = protocol === 'udp' ? sockets.peerAddress(fd, target) : undefined;
      return { ...base, state: bound ? 'bound' : 'unbound', ...(peer && 'port' in peer ? { peer } : {}) };
    });
  }

  /**
   * Whether a TCP socket in state CLOSE holds the port it names. One whose connection ended (reset,
   * or accepted from a listener) still names the port, of its listener perhaps, without holding it;
   * binding it again at restore would fail. On a kernel that cannot tell, it is taken to hold it.
   */
  private holdsItsPort(family: number, inode: number): boolean {
    return this.kernel.sockDiag.tcpBoundOnly(family)?.has(inode) ?? true;
  }

  protected async create(record: InetSocketRecord, target: string, ctx: RestoreContext): Promise<number> {
    const sockets = this.kernel.sockets;
    const fd = sockets.create({ family: record.family === 'inet6' ? AF_INET6 : AF_INET, type: record.protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM, protocol: 0 }, target);
    try {
      const { connection, local, peer } = record;
      for (const [name, value] of Object.entries(record.options)) {
        // Repair mode forces address reuse until the connection is resumed, which sets the program's.
        if (connection && name === 'reuseaddr') continue;
        const option = SOCKET_OPTIONS[name as keyof typeof SOCKET_OPTIONS];
        sockets.setIntOption(fd, option.level, option.name, value, target);
      }
      if (connection && local && peer) {
        await rebuildConnection(this.kernel, fd, { ...record, connection, local, peer }, target, ctx);
        return fd;
      }
      if (local) {
        // The port may still have connections of the killed program in TIME_WAIT: bind as CRIU
        // does, with SO_REUSEADDR for the moment, then the program's own setting.
        const reuse = SOCKET_OPTIONS.reuseaddr;
        sockets.setIntOption(fd, reuse.level, reuse.name, 1, target);
        bindReclaiming(this.kernel, fd, local, record.protocol === 'tcp', `${target} (${shown(local)})`);
        sockets.setIntOption(fd, reuse.level, reuse.name, record.options.reuseaddr ?? 0, target);
      }
      if (record.state === 'listen') sockets.listen(fd, record.backlog ?? 0, target);
      if (peer) sockets.connect(fd, peer, `${target} (to ${shown(peer)})`);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** A restored connection leaves repair mode, and its block is lifted, once everything of the process is back. */
  async resume(record: InetSocketRecord, _restored: void, ctx: RestoreContext): Promise<void> {
    const { connection } = record;
    if (!connection) return;
    const task = restoredTaskOf(ctx);
    const unsent = await unsentBytes(connection, ctx);
    this.kernel.withFdOf(task.pid, record.fds[0]!.fd, (fd, target) => resumeConnection(this.kernel, fd, { ...record, connection }, unsent, target));
  }
}

export default InetSocketsPlugin;
