import { Kernel, TargetError, inject, injectable, isAnonInode, type FdInfo, type RestoreContext, type ResourceNode } from '@cr/core';
import { DescriptionPlugin, type DescriptionHandle, type DescriptionSite } from '@cr/descriptor-base';
import { restoredTaskOf } from '@cr/plugin-tasks';
import { epollRecordSchema, type EpollRecord } from './record.js';
import { epollTargets, sameNumberBefore } from './targets.js';

export { epollRecordSchema, type EpollRecord } from './record.js';

/**
 * epoll instances (epoll_create(2)): every file one watches, with the descriptor number it was
 * added by, its events mask and its data, from /proc/PID/fdinfo, and every descriptor the process
 * has on it (see DescriptionPlugin). Restored empty on the same numbers; the targets are added
 * back by the task itself in `resume`, once every descriptor of the process, other epoll
 * instances included, is back on its number. A target whose descriptor the process closed since
 * (the kernel watches the file on) is refused by name: no number leads to it any more.
 */
@injectable()
export class EpollPlugin extends DescriptionPlugin<EpollRecord> {
  readonly type = 'epoll';
  readonly version = 1;
  readonly description = 'epoll instances: every watched descriptor with its events mask and data, flags, every descriptor on each';
  readonly recordSchema = epollRecordSchema;

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
  }

  protected owns(info: FdInfo): boolean {
    return isAnonInode(info, 'eventpoll');
  }

  protected state(_fdinfo: Readonly<Record<string, string>>, at: DescriptionSite): Pick<EpollRecord, 'targets'> {
    return { targets: epollTargets(this.kernel.procfs.read(at.pid, `fdinfo/${at.fd}`)) };
  }

  protected create(_record: EpollRecord, target: string): number {
    return this.kernel.eventFds.epoll(target);
  }

  refusals(node: ResourceNode<DescriptionHandle>): string[] {
    const { pid, description } = node.handle;
    const epfd = description.info.fd;
    const targets = epollTargets(this.kernel.procfs.read(pid, `fdinfo/${epfd}`));
    return targets.flatMap((t, i) =>
      this.kernel.epollWatchesOpenFd(pid, epfd, t.fd, sameNumberBefore(targets, i))
        ? []
        : [`PID ${pid}: fd ${epfd} is an epoll instance watching a file it was given as fd ${t.fd}, which the process has closed since (or reused for another file), so no descriptor leads to it; cr cannot restore such an epoll item: close fd ${epfd} or remove the item (EPOLL_CTL_DEL) before the descriptor, or leave it out with --exclude epoll:fd=${epfd}`],
    );
  }

  resume(record: EpollRecord, _restored: void, ctx: RestoreContext): void {
    const task = restoredTaskOf(ctx);
    const epfd = record.fds[0]!.fd;
    for (const t of record.targets) {
      if (!task.hasFd(t.fd)) throw new TargetError(`cannot restore epoll fd ${epfd} of PID ${task.pid}: it watches fd ${t.fd}, which is not in the image; include it`);
      task.epollAdd(epfd, t.fd, t.events, BigInt(t.data));
    }
  }
}

export default EpollPlugin;
