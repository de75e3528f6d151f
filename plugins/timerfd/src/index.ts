import { Kernel, inject, injectable, isAnonInode, type FdInfo } from '@cr/core';
import { DescriptionPlugin } from '@cr/descriptor-base';
import { timerfdRecordSchema, type TimerfdRecord } from './record.js';

export { timerfdRecordSchema, type TimerfdRecord } from './record.js';

/** "(seconds, nanoseconds)", as fdinfo shows it_value and it_interval. */
const TIMESPEC = /^\((\d+), (\d+)\)$/;
const nanoseconds = (text: string | undefined) => {
  const m = TIMESPEC.exec(text ?? '');
  return m ? BigInt(m[1]!) * 1_000_000_000n + BigInt(m[2]!) : 0n;
};

/**
 * timerfds (timerfd_create(2)): the clock, the time to the next expiry, the interval and the
 * expirations not read yet, and every descriptor the process has on one (see DescriptionPlugin).
 * Restored relative: a timer set with TFD_TIMER_ABSTIME expires after the same time left (so at
 * its absolute time unless the clock was set meanwhile).
 */
@injectable()
export class TimerfdPlugin extends DescriptionPlugin<TimerfdRecord> {
  readonly type = 'timerfd';
  readonly version = 1;
  readonly description = 'timerfds: clock, time left, interval, unread expirations, flags, every descriptor on each';
  readonly recordSchema = timerfdRecordSchema;

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel);
  }

  protected owns(info: FdInfo): boolean {
    return isAnonInode(info, 'timerfd');
  }

  protected state(fdinfo: Readonly<Record<string, string>>): Pick<TimerfdRecord, 'clockId' | 'valueNs' | 'intervalNs' | 'ticks'> {
    const intervalNs = nanoseconds(fdinfo.it_interval);
    // A periodic timer that expired and was not read since shows 0 left: the kernel re-arms it
    // when its expirations are read. Restored with 0 it would be disarmed; it runs on instead.
    const valueNs = nanoseconds(fdinfo.it_value) || intervalNs;
    return { clockId: Number(fdinfo.clockid ?? 0), valueNs: String(valueNs), intervalNs: String(intervalNs), ticks: String(BigInt(fdinfo.ticks ?? '0')) };
  }

  protected create(record: TimerfdRecord, target: string): number {
    const state = { clockId: record.clockId, valueNs: BigInt(record.valueNs), intervalNs: BigInt(record.intervalNs), ticks: BigInt(record.ticks) };
    return this.kernel.eventFds.timerfd(state, 0, target);
  }
}

export default TimerfdPlugin;
