import { closeSync, writeSync } from 'node:fs';
import type { Libc } from './libc.js';

/** _IOW('T', 0, u64): sets how many expirations a timerfd has that were not read yet. */
const TFD_IOC_SET_TICKS = 0x40085400;

/** A timerfd as /proc/PID/fdinfo shows it. */
export interface TimerfdState {
  clockId: number;
  /** Time to the next expiry, relative, and the interval, in nanoseconds; 0 and 0 is disarmed. */
  valueNs: bigint;
  intervalNs: bigint;
  /** Expirations not read yet. */
  ticks: bigint;
}

/**
 * eventfds, signalfds, timerfds and epoll instances made by cr with a saved state, to hand to a restored task. Each
 * method returns a descriptor of cr's own that the caller closes once the task has its copy.
 */
export class EventFds {
  constructor(private readonly libc: Libc) {}

  /** An eventfd holding `count`, with eventfd(2) flags (EFD_SEMAPHORE, EFD_NONBLOCK). */
  eventfd(count: bigint, flags: number, target: string): number {
    const fd = this.libc.eventfd(flags, target);
    try {
      if (count > 0n) {
        const add = Buffer.alloc(8);
        add.writeBigUInt64LE(count);
        writeSync(fd, add);
      }
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }

  /** An empty epoll instance: the task adds its targets itself (RemoteTask.epollAdd), by its own numbers. */
  epoll(target: string): number {
    return this.libc.epollCreate1(0, target);
  }

  signalfd(mask: bigint, flags: number, target: string): number {
    return this.libc.signalfd(mask, flags, target);
  }

  /** A timerfd armed as `state` says, with the expirations it had not read yet. */
  timerfd(state: TimerfdState, flags: number, target: string): number {
    const fd = this.libc.timerfdCreate(state.clockId, flags, target);
    try {
      if (state.valueNs > 0n) this.libc.timerfdSettime(fd, state.valueNs, state.intervalNs, target);
      if (state.ticks > 0n) this.libc.ioctlU64(fd, TFD_IOC_SET_TICKS, state.ticks, 'ioctl(TFD_IOC_SET_TICKS)', target);
      return fd;
    } catch (err) {
      closeSync(fd);
      throw err;
    }
  }
}
