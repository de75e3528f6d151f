import { AF_NETLINK, Kernel, inject, injectable, socketInode, type FdInfo, type ResourceNode } from '@cr/core';
import { DescriptionPlugin, type DescriptionHandle, type DescriptionSite } from '@cr/descriptor-base';
import { netlinkSocketRecordSchema, type NetlinkSocketRecord } from './record.js';

export { netlinkSocketRecordSchema, type NetlinkSocketRecord } from './record.js';

const SOCK_DGRAM = 2;
const SOCK_RAW = 3;

/**
 * Netlink sockets (netlink(7)): made again in cr on the same port id, listening to the same
 * multicast groups, connected where they were, with their options and buffer sizes, and given to
 * the process on the same descriptors (see DescriptionPlugin). What the kernel had queued for the
 * program cannot be put back: a socket with messages not read yet, or a dump being answered, is
 * refused by name.
 */
@injectable()
export class NetlinkSocketsPlugin extends DescriptionPlugin<NetlinkSocketRecord> {
  readonly type = 'netlink-sockets';
  readonly version = 1;
  readonly description = 'netlink sockets: protocol, port id, multicast groups, peer, options, buffer sizes, every descriptor on each';
  readonly recordSchema = netlinkSocketRecordSchema;

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
  }

  protected owns(info: FdInfo, pid: number): boolean {
    if (info.kind.kind !== 'socket') return false;
    return this.kernel.withFdOf(pid, info.fd, (fd, target) => this.kernel.sockets.kind(fd, target).family === AF_NETLINK);
  }

  refusals(node: ResourceNode<DescriptionHandle>): string[] {
    const { pid, description } = node.handle;
    const { fd } = description.info;
    const leaveOut = `leave it out with --exclude netlink-sockets:fd=${fd}`;
    // An unbound socket is in no table the kernel shows, and nothing can be queued for it.
    const bound = this.kernel.withFdOf(pid, fd, (local, target) => this.kernel.netlinkSockets.state(local, target).portid !== 0);
    if (!bound) return [];
    const queue = this.kernel.netlinkSockets.queue(socketInode(description.info));
    if (!queue) return [`PID ${pid}: fd ${fd} is a netlink socket /proc/net/netlink does not show in cr's network namespace; cr cannot checkpoint it; ${leaveOut}`];
    if (queue.dumping) return [`PID ${pid}: fd ${fd} is a netlink socket the kernel is answering a dump request on, which cr cannot resume; checkpoint once the program has read the dump, or ${leaveOut}`];
    if (queue.queuedBytes > 0) {
      return [`PID ${pid}: fd ${fd} is a netlink socket with ${queue.queuedBytes} bytes of messages not read yet, which cr cannot put back; checkpoint once the program has read them, or ${leaveOut}`];
    }
    return [];
  }

  protected state(_fdinfo: Readonly<Record<string, string>>, at: DescriptionSite): Omit<NetlinkSocketRecord, 'statusFlags' | 'fds' | 'holders'> {
    return this.kernel.withFdOf(at.pid, at.fd, (fd, target) => {
      const { type, protocol } = this.kernel.sockets.kind(fd, target);
      const { portid, groups, peer, options } = this.kernel.netlinkSockets.state(fd, target);
      const connected = peer.portid !== 0 || peer.groups !== 0;
      return { type: type === SOCK_DGRAM ? 'dgram' : 'raw', protocol, portid, groups, ...(connected ? { peer } : {}), options, buffers: this.kernel.sockets.buffers(fd, target) };
    });
  }

  protected create(record: NetlinkSocketRecord, target: string): number {
    const type = record.type === 'dgram' ? SOCK_DGRAM : SOCK_RAW;
    const state = { portid: record.portid, groups: record.groups, peer: record.peer ?? { portid: 0, groups: 0 }, options: record.options };
    return this.kernel.netlinkSockets.create(type, record.protocol, state, record.buffers, target);
  }
}

export default NetlinkSocketsPlugin;
