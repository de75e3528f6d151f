import { Kernel, inject, injectable, isAnonInode, type FdInfo } from '@cr/core';
import { DescriptionPlugin } from '@cr/descriptor-base';
import { eventfdRecordSchema, type EventfdRecord } from './record.js';

export { eventfdRecordSchema, type EventfdRecord } from './record.js';

const EFD_SEMAPHORE = 1;

/**
 * eventfds (eventfd(2)): the 64-bit counter and the semaphore mode, and every descriptor the
 * process has on one (see DescriptionPlugin for what all descriptor-owning plugins do).
 */
@injectable()
export class EventfdPlugin extends DescriptionPlugin<EventfdRecord> {
  readonly type = 'eventfd';
  readonly version = 1;
  readonly description = 'eventfds: counter, semaphore mode, flags, every descriptor on each';
  readonly recordSchema = eventfdRecordSchema;

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
  }

  protected owns(info: FdInfo): boolean {
    return isAnonInode(info, 'eventfd');
  }

  protected state(fdinfo: Readonly<Record<string, string>>): Pick<EventfdRecord, 'count' | 'semaphore'> {
    // The kernel prints the counter in hex.
    return { count: String(BigInt(`0x${fdinfo['eventfd-count'] ?? '0'}`)), semaphore: fdinfo['eventfd-semaphore'] === '1' };
  }

  protected create(record: EventfdRecord, target: string): number {
    return this.kernel.eventFds.eventfd(BigInt(record.count), record.semaphore ? EFD_SEMAPHORE : 0, target);
  }
}

export default EventfdPlugin;
