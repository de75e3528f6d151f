import { readFileSync } from 'node:fs';
import { TargetError, UnsupportedError } from '../errors.js';

const PF_KTHREAD = 0x00200000;

export interface ProcessStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  flags: number;
  startTime: bigint;
}

/** What /proc says about processes. */
export class Procfs {
  stat(pid: number): ProcessStat {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    } catch {
      throw new TargetError(`no process with PID ${pid}: /proc/${pid} does not exist; check the PID with ps`);
    }
    // comm may hold spaces and parentheses; it ends at the last ')'.
    const close = text.lastIndexOf(')');
    const comm = text.slice(text.indexOf('(') + 1, close);
    const f = text.slice(close + 2).split(' ');
    return {
      pid,
      comm,
      state: f[0]!,
      ppid: Number(f[1]),
      pgid: Number(f[2]),
      sid: Number(f[3]),
      flags: Number(f[6]),
      startTime: BigInt(f[19]!),
    };
  }

  /** Throws a clear error unless `pid` is a live user-space process cr may act on. */
  assertUserProcess(pid: number): ProcessStat {
    if (!Number.isInteger(pid) || pid <= 0) {
      throw new TargetError(`"${pid}" is not a PID: give a positive process id`);
    }
    const stat = this.stat(pid);
    if (stat.flags & PF_KTHREAD) {
      throw new UnsupportedError(`PID ${pid} (${stat.comm}) is a kernel thread; cr checkpoints user processes only`);
    }
    if (stat.state === 'Z' || stat.state === 'X') {
      throw new TargetError(`PID ${pid} (${stat.comm}) is a zombie: it has exited and has nothing left to checkpoint`);
    }
    return stat;
  }

  /** Whether this process has capability number `cap` (e.g. 24, CAP_SYS_RESOURCE) in effect. */
  hasCapability(cap: number): boolean {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    return line !== undefined && ((BigInt(`0x${line.slice(7).trim()}`) >> BigInt(cap)) & 1n) === 1n;
  }
}
