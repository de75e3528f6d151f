import {
  AF_INET,
  AF_INET6,
  Kernel,
  SOCK_DGRAM,
  SOCK_STREAM,
  inject,
  injectable,
  socketInode,
  type FdInfo,
  type ResourceNode,
  type SocketAddress,
} from '@cr/core';
import { closeSync } from 'node:fs';
import { DescriptionPlugin, type DescriptionHandle, type DescriptionSite } from '@cr/descriptor-base';
import { SOCKET_OPTIONS, appliesTo } from './options.js';
import { bindReclaiming } from './port.js';
import { inetSocketRecordSchema, type InetSocketRecord } from './record.js';

export { inetSocketRecordSchema, type InetSocketRecord } from './record.js';

const TCP_ESTABLISHED = 1;
const TCP_CLOSE = 7;
const TCP_LISTEN = 10;
const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];
const IPPROTO_TCP = 6;
const IPPROTO_UDP = 17;

const shown = (a: SocketAddress | undefined) => (a && 'port' in a ? (a.family === 'inet6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`) : '?');

/**
 * TCP and UDP sockets of cr's network namespace: a listening TCP socket with its address, port,
 * backlog and options, a TCP socket not connected yet, a UDP socket bound and maybe connected,
 * each with every descriptor the process has on it (see DescriptionPlugin). Each is looked at
 * from cr through a copy of its descriptor. An established TCP connection (or one opening or
 * closing) is refused by name. Restored as a new socket bound to the same address and port:
 * the port must be free, as it is once the checkpointed program was killed.
 */
@injectable()
export class InetSocketsPlugin extends DescriptionPlugin<InetSocketRecord> {
  readonly type = 'inet-sockets';
  readonly version = 1;
  readonly description = 'TCP listeners and UDP sockets: address, port, backlog, options, flags, every descriptor on each';
  readonly recordSchema = inetSocketRecordSchema;

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
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

  refusals(node: ResourceNode<DescriptionHandle>): string[] {
    const { pid, description } = node.handle;
    return this.kernel.withFdOf(pid, description.info.fd, (fd, target) => {
      const { type } = this.kernel.sockets.kind(fd, target);
      if (type !== SOCK_STREAM) return [];
      const state = this.kernel.sockets.tcpState(fd, target);
      if (state === TCP_LISTEN || state === TCP_CLOSE) return [];
      const what = state === TCP_ESTABLISHED ? 'an established TCP connection' : `a TCP connection in state ${TCP_STATES[state] ?? state}`;
      const ends = `${shown(this.kernel.sockets.localAddress(fd, target))} -> ${shown(this.kernel.sockets.peerAddress(fd, target))}`;
      return [`PID ${pid}: fd ${description.info.fd} is ${what} (${ends}), which cr cannot checkpoint yet (--tcp-established is a later step); close it first, or leave it out with --exclude inet-sockets:fd=${description.info.fd}`];
    });
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
      const bound = 'port' in local && local.port !== 0;
      const base = { protocol, family, options, ...(bound ? { local: local as InetSocketRecord['local'] & object } : {}) } as const;
      if (protocol === 'tcp' && sockets.tcpState(fd, target) === TCP_LISTEN) {
        const diag = this.kernel.sockDiag.tcpListeners(kind.family).get(socketInode(at.info));
        if (diag && diag.pending > 0) at.warn(`PID ${at.pid}: fd ${at.fd}, the TCP listener on ${shown(local)}, has ${diag.pending} connection(s) not accepted yet; they are not in the image (if the process is killed before it accepts them, their clients see them reset)`);
        return { ...base, state: 'listen', backlog: diag?.backlog ?? 0 };
      }
      if (protocol === 'udp' && sockets.queuedBytes(fd, target) > 0) at.warn(`PID ${at.pid}: fd ${at.fd}, the UDP socket on ${shown(local)}, has datagrams not read yet; they are not saved, and the restored program will not see them`);
      const peer = protocol === 'udp' ? sockets.peerAddress(fd, target) : undefined;
      return { ...base, state: bound ? 'bound' : 'unbound', ...(peer && 'port' in peer ? { peer } : {}) };
    });
  }

  protected create(record: InetSocketRecord, target: string): number {
    const sockets = this.kernel.sockets;
    const fd = sockets.create({ family: record.family === 'inet6' ? AF_INET6 : AF_INET, type: record.protocol === 'tcp' ? SOCK_STREAM : SOCK_DGRAM, protocol: 0 }, target);
    try {
      for (const [name, value] of Object.entries(record.options)) {
        const option = SOCKET_OPTIONS[name as keyof typeof SOCKET_OPTIONS];
        sockets.setIntOption(fd, option.level, option.name, value, target);
      }
      if (record.local) {
        // The port may still have connections of the killed program in TIME_WAIT: bind as CRIU
        // does, with SO_REUSEADDR for the moment, then the program's own setting.
        const reuse = SOCKET_OPTIONS.reuseaddr;
        sockets.setIntOption(fd, reuse.level, reuse.name, 1, target);
        bindReclaiming(this.kernel, fd, record.local, record.protocol === 'tcp', `${target} (${shown(record.local)})`);
        sockets.setIntOption(fd, reuse.level, reuse.name, record.options.reuseaddr ?? 0, target);
      }
      if (record.state === 'listen') sockets.listen(fd, record.backlog ?? 0, target);
      if (record.peer) sockets.connect(fd, record.peer, `${target} (to ${shown(record.peer)})`);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

}

export default InetSocketsPlugin;
