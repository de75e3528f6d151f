import { Kernel, inject, injectable, isAnonInode, type FdInfo } from '@cr/core';
import { DescriptionPlugin } from '@cr/descriptor-base';
import { signalfdRecordSchema, type SignalfdRecord } from './record.js';

export { signalfdRecordSchema, type SignalfdRecord } from './record.js';

/**
 * signalfds (signalfd(2)): the signals each reads, and every descriptor the process has on one
 * (see DescriptionPlugin). The signals themselves are the process's (pending, blocked): the tasks
 * plugin saves those.
 */
@injectable()
export class SignalfdPlugin extends DescriptionPlugin<SignalfdRecord> {
  readonly type = 'signalfd';
  readonly version = 1;
  readonly description = 'signalfds: signal mask, flags, every descriptor on each';
  readonly recordSchema = signalfdRecordSchema;

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
  }

  protected owns(info: FdInfo): boolean {
    return isAnonInode(info, 'signalfd');
  }

  protected state(fdinfo: Readonly<Record<string, string>>): Pick<SignalfdRecord, 'mask'> {
    return { mask: `0x${BigInt(`0x${fdinfo.sigmask ?? '0'}`).toString(16)}` };
  }

  protected create(record: SignalfdRecord, target: string): number {
    return this.kernel.eventFds.signalfd(BigInt(record.mask), 0, target);
  }
}

export default SignalfdPlugin;
