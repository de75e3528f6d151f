import { Kernel, inject, injectable, inotifyWatches, isAnonInode, type FdInfo, type RecordCheckContext, type ResourceNode } from '@cr/core';
import { DescriptionPlugin, type DescriptionHandle, type DescriptionSite } from '@cr/descriptor-base';
import { inotifyRecordSchema, type InotifyRecord } from './record.js';

export { inotifyRecordSchema, type InotifyRecord } from './record.js';

/**
 * inotify instances (inotify_init(2)): every watch with its number and mask, and the path of the
 * file or directory it watches, found from the file handle /proc/PID/fdinfo shows
 * (open_by_handle_at(2)); every descriptor the process has on one (see DescriptionPlugin).
 * Restored with the same watch numbers. Events not read yet are not saved: the checkpoint says
 * so in a warning. A watch on a file no path leads to any more is refused by name.
 */
@injectable()
export class InotifyPlugin extends DescriptionPlugin<InotifyRecord> {
  readonly type = 'inotify';
  readonly version = 1;
  readonly description = 'inotify instances: every watch by path with its number and mask, flags, every descriptor on each';
  readonly recordSchema = inotifyRecordSchema;

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
  }

  protected owns(info: FdInfo): boolean {
    return isAnonInode(info, 'inotify');
  }

  refusals(node: ResourceNode<DescriptionHandle>): string[] {
    const { pid, description } = node.handle;
    const fd = description.info.fd;
    return inotifyWatches(this.kernel.procfs.read(pid, `fdinfo/${fd}`)).flatMap((w) =>
      this.kernel.inotify.pathOf(w) !== undefined
        ? []
        : [`PID ${pid}: fd ${fd} is an inotify instance whose watch ${w.wd} is on inode ${w.inode} (device ${w.sdev >>> 20}:${w.sdev & 0xfffff}), which no path leads to any more (deleted, or on a mount cr does not see); cr cannot watch it again: leave it out with --exclude inotify:fd=${fd}`],
    );
  }

  protected state(_fdinfo: Readonly<Record<string, string>>, at: DescriptionSite): Pick<InotifyRecord, 'watches'> {
    const pending = this.kernel.withFdOf(at.pid, at.fd, (local, target) => this.kernel.inotify.pendingBytes(local, target));
    if (pending > 0) at.warn(`PID ${at.pid}: fd ${at.fd}, an inotify instance, has ${pending} bytes of events not read yet; they are not saved, and the restored program will not see them`);
    const watches = inotifyWatches(this.kernel.procfs.read(at.pid, `fdinfo/${at.fd}`));
    return { watches: watches.map((w) => ({ wd: w.wd, mask: w.mask, path: this.kernel.inotify.pathOf(w)! })) };
  }

  override checkRecord(record: InotifyRecord, ctx: RecordCheckContext): string[] {
    const problems = super.checkRecord(record, ctx);
    if (new Set(record.watches.map((w) => w.wd)).size !== record.watches.length) problems.push('it names one watch twice');
    return problems;
  }

  protected create(record: InotifyRecord, target: string): number {
    return this.kernel.inotify.create(record.watches, target);
  }
}

export default InotifyPlugin;
