import { readdirSync, readFileSync, readlinkSync, statfsSync, statSync, writeFileSync } from 'node:fs';
import { exitedLeaderThread, procDir } from './proc-dir.js';
import { TargetError, UnsupportedError } from '../errors.js';
import { classifyFd, FS_MAGIC, type FdKind } from './fd-kind.js';
import { parseFileLocks, type FileLock } from './file-locks.js';
import { nodeFsError } from './sysctl.js';

const PF_KTHREAD = 0x00200000;

export interface ProcessStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
  sid: number;
  /** The device number of its controlling terminal (0: none). */
  ttyNr: number;
  flags: number;
  nice: number;
  threads: number;
  startTime: bigint;
  /** Real-time priority and scheduling policy (SCHED_OTHER 0, SCHED_FIFO 1 …). */
  rtPriority: number;
  policy: number;
  /** A zombie's wait status (exit code << 8, or the signal that killed it); 0 for a live process. */
  exitCode: number;
}

/** The address-space bounds the kernel keeps in mm_struct, as /proc/PID/stat shows them. */
export interface MmBounds {
  startCode: bigint;
  endCode: bigint;
  startData: bigint;
  endData: bigint;
  startBrk: bigint;
  startStack: bigint;
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
}

/** The lines of /proc/PID/status cr needs, parsed. */
export interface ProcessStatus {
  uids: [number, number, number, number];
  gids: [number, number, number, number];
  groups: number[];
  capInheritable: bigint;
  capPermitted: bigint;
  capEffective: bigint;
  capBounding: bigint;
  capAmbient: bigint;
  noNewPrivs: boolean;
  seccomp: number;
  /** How many seccomp filters the thread has (in mode 2). */
  seccompFilters: number;
  umask: number;
  threads: number;
  /** The PID of the process a thread belongs to (its own PID for a main thread). */
  tgid: number;
  /** The PID of the process tracing this one (a debugger), or 0. */
  tracerPid: number;
  /** The CPUs it may run on, as /proc shows the mask: hex words, highest first, comma-separated. */
  cpusAllowed: string;
}

/** One resource limit (prlimit(2)). */
export interface ResourceLimit {
  soft: bigint;
  hard: bigint;
}

const RLIM_INFINITY = 0xffff_ffff_ffff_ffffn;

/** One open file descriptor as /proc/PID/fd and /proc/PID/fdinfo show it. */
export interface FdInfo {
  fd: number;
  /** What /proc/PID/fd/N points to: a path (maybe with " (deleted)"), "pipe:[ino]", "socket:[ino]" … */
  link: string;
  pos: bigint;
  /** open(2) flags, O_CLOEXEC included. */
  flags: number;
  mntId: number;
  /** What it is, as the kernel identifies it (see fd-kind.ts). */
  kind: FdKind;
  /** The locks fdinfo lists on it: the open file's own (flock, OFD, lease) and the process's record locks on its file. */
  locks: FileLock[];
}

/** What /proc says about processes. */
export class Procfs {
  stat(pid: number): ProcessStat {
    const f = this.statFields(pid);
    return {
      pid,
      comm: f.comm,
      state: f.rest[0]!,
      ppid: Number(f.rest[1]),
      pgid: Number(f.rest[2]),
      sid: Number(f.rest[3]),
      ttyNr: Number(f.rest[4]),
      flags: Number(f.rest[6]),
      nice: Number(f.rest[16]),
      threads: Number(f.rest[17]),
      startTime: BigInt(f.rest[19]!),
      rtPriority: Number(f.rest[37]),
      policy: Number(f.rest[38]),
      exitCode: Number(f.rest[49] ?? 0),
    };
  }

  /**
   * Whether a process other than those of `except` has a descriptor leading to `link` (as
   * /proc/PID/fd/N reads, `pipe:[123]`): a walk of every process's descriptors, for the rare
   * question of whether the other end of a pipe is still open anywhere. Processes that vanish or
   * that cr may not look into meanwhile are passed over.
   */
  heldElsewhere(link: string, except: ReadonlySet<number>): boolean {
    for (const entry of readdirSync('/proc')) {
      const pid = Number(entry);
      if (!Number.isInteger(pid) || except.has(pid)) continue;
      let fds: string[];
      try {
        fds = readdirSync(`/proc/${pid}/fd`);
      } catch {
        continue;
      }
      for (const fd of fds) {
        try {
          if (readlinkSync(`/proc/${pid}/fd/${fd}`) === link) return true;
        } catch {
          // Closed meanwhile.
        }
      }
    }
    return false;
  }

  /** Whether a process with this PID runs: not gone, and not a zombie waiting for its parent. */
  isRunning(pid: number): boolean {
    let state: string;
    try {
      state = this.stat(pid).state;
    } catch {
      return false;
    }
    return state !== 'Z' && state !== 'X';
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
    // A main thread that has exited while other threads run on leaves a live process, read through one of them.
    if ((stat.state === 'Z' || stat.state === 'X') && exitedLeaderThread(pid) === undefined) {
      throw new TargetError(`PID ${pid} (${stat.comm}) is a zombie: it has exited and has nothing left to checkpoint`);
    }
    return stat;
  }

  mmBounds(pid: number): MmBounds {
    // The address space's fields, which a main thread that has exited no longer shows.
    const f = this.statFields(pid, procDir(pid)).rest;
    // Fields 26-28 and 45-51 of proc(5), counted from 1 with pid and comm as the first two.
    const at = (field: number) => BigInt(f[field - 3]!);
    return {
      startCode: at(26),
      endCode: at(27),
      startStack: at(28),
      startData: at(45),
      endData: at(46),
      startBrk: at(47),
      argStart: at(48),
      argEnd: at(49),
      envStart: at(50),
      envEnd: at(51),
    };
  }

  status(pid: number): ProcessStatus {
    const lines = new Map(
      this.read(pid, 'status')
        .split('\n')
        .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()] as const),
    );
    const get = (name: string) => lines.get(name) ?? '';
    const ids = (name: string) => get(name).split(/\s+/).map(Number) as [number, number, number, number];
    const hex = (name: string) => BigInt(`0x${get(name) || '0'}`);
    return {
      uids: ids('Uid'),
      gids: ids('Gid'),
      groups: get('Groups').split(/\s+/).filter(Boolean).map(Number),
      capInheritable: hex('CapInh'),
      capPermitted: hex('CapPrm'),
      capEffective: hex('CapEff'),
      capBounding: hex('CapBnd'),
      capAmbient: hex('CapAmb'),
      noNewPrivs: get('NoNewPrivs') === '1',
      seccomp: Number(get('Seccomp') || 0),
      seccompFilters: Number(get('Seccomp_filters') || 0),
      umask: Number.parseInt(get('Umask') || '22', 8),
      threads: Number(get('Threads') || 1),
      tgid: Number(get('Tgid')),
      tracerPid: Number(get('TracerPid') || 0),
      cpusAllowed: get('Cpus_allowed'),
    };
  }

  /**
   * The process's resource limits, indexed by RLIMIT_* number, as /proc/PID/limits shows them
   * (one line per limit in that order, RLIM_INFINITY as "unlimited"): one file read instead of
   * a prlimit(2) per limit inside the task, and readable whoever owns the process.
   */
  limits(pid: number): ResourceLimit[] {
    const rows = this.read(pid, 'limits').split('\n').slice(1).filter(Boolean);
    const value = (v: string | undefined, row: string) => {
      if (v === 'unlimited') return RLIM_INFINITY;
      if (v === undefined || !/^[0-9]+$/.test(v)) throw new TargetError(`PID ${pid}: cannot read a limit from /proc/${pid}/limits line "${row.trim()}"`);
      return BigInt(v);
    };
    return rows.map((row) => {
      // The name is padded to 26 columns, each value to 21.
      const [soft, hard] = row.slice(26).trim().split(/\s+/);
      return { soft: value(soft, row), hard: value(hard, row) };
    });
  }

  /** PIDs of the processes whose parent is `pid`. */
  children(pid: number): number[] {
    const found: number[] = [];
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        found.push(...this.read(pid, `task/${tid}/children`).trim().split(/\s+/).filter(Boolean).map(Number));
      } catch {
        // The thread exited while we looked.
      }
    }
    return found;
  }

  /** The open file descriptors of `pid`, in ascending order, each identified (see fd-kind.ts). */
  fds(pid: number): FdInfo[] {
    const fds = this.fdNumbers(pid);
    const reachableMounts = new Set([...this.mountIds(pid), ...this.mountIds('self')]);
    return fds.flatMap((fd) => this.fdInfo(pid, fd, reachableMounts) ?? []);
  }

  /**
   * The open file descriptors of `pid`, in ascending order, with their open(2) flags and whether
   * fdinfo lists a lock on them: fdinfo alone, for a process whose descriptors cr made itself and
   * need not identify (fds does that: a readlink, a stat and a statfs each, and the mount tables).
   */
  fdFlags(pid: number): { fd: number; flags: number; locked: boolean }[] {
    return this.fdNumbers(pid).map((fd) => {
      const fields = this.fdinfo(pid, fd);
      return { fd, flags: Number.parseInt(fields.flags ?? '0', 8), locked: 'lock' in fields };
    });
  }

  /** The descriptor numbers `pid` has open, in ascending order. */
  private fdNumbers(pid: number): number[] {
    return readdirSync(`${procDir(pid)}/fd`).map(Number).sort((a, b) => a - b);
  }

  /** Every "name: value" line of /proc/PID/fdinfo/FD (eventfd-count, sigmask, it_value …). */
  fdinfo(pid: number, fd: number): Record<string, string> {
    const fields: Record<string, string> = {};
    for (const line of this.read(pid, `fdinfo/${fd}`).split('\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) fields[line.slice(0, colon).trim()] = line.slice(colon + 1).trim();
    }
    return fields;
  }

  /** One descriptor, or undefined when it was closed while we looked (a running process, for a dry run). */
  private fdInfo(pid: number, fd: number, reachableMounts: ReadonlySet<number>): FdInfo | undefined {
    const path = `${procDir(pid)}/fd/${fd}`;
    const link = unlessGone('readlink', path, () => readlinkSync(path));
    const info = unlessGone('read', `${procDir(pid)}/fdinfo/${fd}`, () => readFileSync(`${procDir(pid)}/fdinfo/${fd}`, 'utf8'));
    const st = unlessGone('stat', path, () => statSync(path, { bigint: true }));
    const fs = unlessGone('statfs', path, () => statfsSync(path));
    if (link === undefined || info === undefined || st === undefined || fs === undefined) return undefined;
    const field = (name: string) => info.match(new RegExp(`^${name}:\\s*(\\S+)`, 'm'))?.[1];
    const mntId = Number(field('mnt_id') ?? 0);
    const fsType = Number(fs.type);
    const pidfdPid = fsType === FS_MAGIC.PIDFS ? field('Pid') : undefined;
    return {
      fd,
      link,
      pos: BigInt(field('pos') ?? 0),
      flags: Number.parseInt(field('flags') ?? '0', 8),
      mntId,
      kind: classifyFd({ link, st, fsType, reachable: reachableMounts.has(mntId), ...(pidfdPid === undefined ? {} : { pidfdPid: Number(pidfdPid) }) }),
      locks: parseFileLocks(info, `${procDir(pid)}/fdinfo/${fd}`),
    };
  }

  /** The ids of the mounts in the mount table of `pid` (or "self"): the mounts a path can lead to. */
  private mountIds(pid: number | 'self'): number[] {
    const table = pid === 'self' ? readFileSync('/proc/self/mountinfo', 'utf8') : this.read(pid, 'mountinfo');
    return table
      .split('\n')
      .filter(Boolean)
      .map((line) => Number(line.slice(0, line.indexOf(' '))));
  }

  link(pid: number, name: string): string {
    try {
      return readlinkSync(`${procDir(pid)}/${name}`);
    } catch (err) {
      throw nodeFsError('readlink', `${procDir(pid)}/${name}`, err);
    }
  }

  /** A file of /proc/PID as text. */
  read(pid: number, name: string): string {
    // A process's own stat (its state, its name), not that of the thread it is read through.
    const dir = name === 'stat' ? `/proc/${pid}` : procDir(pid);
    try {
      return readFileSync(`${dir}/${name}`, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' && name === 'stat') {
        throw new TargetError(`no process with PID ${pid}: /proc/${pid} does not exist; check the PID with ps`);
      }
      throw nodeFsError('read', `${dir}/${name}`, err);
    }
  }

  /** Writes a setting of /proc/PID (coredump_filter, oom_score_adj …) as one write, as the kernel wants it. */
  write(pid: number, name: string, value: string): void {
    try {
      writeFileSync(`${procDir(pid)}/${name}`, value);
    } catch (err) {
      throw nodeFsError('write', `${procDir(pid)}/${name}`, err);
    }
  }

  /** A file of /proc/PID as bytes (auxv). */
  readBytes(pid: number, name: string): Buffer {
    try {
      return readFileSync(`${procDir(pid)}/${name}`);
    } catch (err) {
      throw nodeFsError('read', `${procDir(pid)}/${name}`, err);
    }
  }

  /** Whether this process has capability number `cap` (e.g. 24, CAP_SYS_RESOURCE) in effect. */
  hasCapability(cap: number): boolean {
    const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
    return line !== undefined && ((BigInt(`0x${line.slice(7).trim()}`) >> BigInt(cap)) & 1n) === 1n;
  }

  private statFields(pid: number, dir = `/proc/${pid}`): { comm: string; rest: string[] } {
    const text = dir === `/proc/${pid}` ? this.read(pid, 'stat') : readFileSync(`${dir}/stat`, 'utf8');
    // comm may hold spaces and parentheses; it ends at the last ')'.
    const close = text.lastIndexOf(')');
    return { comm: text.slice(text.indexOf('(') + 1, close), rest: text.slice(close + 2).trim().split(' ') };
  }
}

/**
 * The thread ids of a process as /proc/PID/task lists them, the main thread (PID) first; just
 * [PID] when the process is gone.
 */
export function threadIds(pid: number): number[] {
  let tids: number[];
  try {
    tids = readdirSync(`/proc/${pid}/task`).map(Number);
  } catch {
    return [pid];
  }
  return [pid, ...tids.filter((tid) => tid !== pid).sort((a, b) => a - b)];
}

/** A /proc read of one descriptor; undefined when the descriptor (or its process) is gone. */
function unlessGone<T>(syscall: string, path: string, call: () => T): T | undefined {
  try {
    return call();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw nodeFsError(syscall, path, err);
  }
}
