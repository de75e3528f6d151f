import { closeSync, openSync } from 'node:fs';
import { TargetError, isAnonInode, type FdInfo, type Kernel } from '@cr/core';
import type { InflightFile } from './record.js';

const O_CLOEXEC = 0o2000000;
const O_ACCMODE = 3;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_NONBLOCK = 0o4000;
const EFD_SEMAPHORE = 1;
const PIPE = /^pipe:\[(\d+)\]$/;

/** A process of the checkpoint, with its descriptors. */
interface TreeTask {
  pid: number;
  fds(): readonly FdInfo[];
}

/**
 * The files in flight in one object's queues, each once however many messages carry it, as
 * MSG_PEEK gave them to cr. Each is found among the descriptors of the processes of the
 * checkpoint (kcmp: the same open file description), which their own plugins save; or, held by no
 * process, saved here when cr can make it again (an eventfd; an end of a pipe no process holds an
 * end of); any other is a refusal, in `problems`.
 */
export class InflightFiles {
  readonly problems: string[] = [];
  private readonly found: (InflightFile | undefined)[] = [];
  private readonly locals: number[] = [];

  constructor(
    private readonly kernel: Kernel,
    private readonly tree: readonly TreeTask[],
  ) {}

  /** The files found, for the record; only once there are no problems. */
  get files(): InflightFile[] {
    if (this.problems.length > 0) throw new TargetError(this.problems[0]!);
    return this.found.map((f) => f!);
  }

  /** The index in `files` of the file behind cr's descriptor `local`, in flight to the socket `where` names ("PID 7: fd 3, a unix stream socket,"). */
  indexOf(local: number, where: string): number {
    const same = this.locals.findIndex((l) => this.kernel.sameOpenFile(process.pid, l, process.pid, local));
    if (same >= 0) return same;
    const info = this.kernel.procfs.fds(process.pid).find((i) => i.fd === local);
    if (!info) throw new Error(`internal error: cr's descriptor ${local} of a file in flight is gone`);
    this.locals.push(local);
    this.found.push(this.identify(info, where));
    return this.found.length - 1;
  }

  private identify(info: FdInfo, where: string): InflightFile | undefined {
    for (const task of this.tree) {
      const fd = task.fds().find((i) => i.link === info.link && this.kernel.sameOpenFile(process.pid, info.fd, task.pid, i.fd))?.fd;
      if (fd !== undefined) return { held: { pid: task.pid, fd } };
    }
    const statusFlags = info.flags & ~O_CLOEXEC & ~O_ACCMODE;
    if (isAnonInode(info, 'eventfd')) {
      const fdinfo = this.kernel.procfs.fdinfo(process.pid, info.fd);
      return { eventfd: { count: String(BigInt(`0x${fdinfo['eventfd-count'] ?? '0'}`)), semaphore: fdinfo['eventfd-semaphore'] === '1' }, statusFlags };
    }
    const pipe = PIPE.exec(info.link);
    if (pipe && info.kind.kind === 'pipe') {
      const holder = this.tree.flatMap((t) => t.fds().filter((i) => i.link === info.link).map((i) => `fd ${i.fd} of PID ${t.pid}`))[0];
      if (holder) {
        this.problems.push(`${where} has in flight (SCM_RIGHTS) an end of ${info.link} that no process holds, while ${holder} is an end of that pipe; cr cannot restore a pipe split that way; let the program read the message first`);
        return undefined;
      }
      const { data, capacity } = this.kernel.pipes.peek(process.pid, info.fd);
      return { pipe: { inode: Number(pipe[1]), end: (info.flags & O_ACCMODE) === O_WRONLY ? 'write' : 'read', capacity, data: data.toString('base64') }, statusFlags };
    }
    const what = info.kind.kind === 'socket' ? `a socket (${info.link}) that no process holds, which may have descriptors in flight itself` : `${info.link} (${info.kind.kind}), which no process holds`;
    this.problems.push(`${where} has in flight (SCM_RIGHTS) ${what}; cr restores a file in flight that a process of the checkpoint holds too, or an eventfd or pipe that none holds; let the program read the message first`);
    return undefined;
  }
}

/**
 * The files in flight of a restored object, as descriptors of cr's to send again: a held one
 * taken from the restored process that holds it (pidfd_getfd), the others made anew.
 */
export function openInflight(kernel: Kernel, files: readonly InflightFile[], key: string): number[] {
  const opened: number[] = [];
  const pipes = new Map<number, [number, number]>();
  try {
    for (const file of files) opened.push(openOne(kernel, file, key, pipes));
    return opened;
  } catch (err) {
    opened.forEach((fd) => closeSync(fd));
    throw err;
  } finally {
    for (const ends of pipes.values()) ends.forEach((fd) => closeSync(fd));
  }
}

function openOne(kernel: Kernel, file: InflightFile, key: string, pipes: Map<number, [number, number]>): number {
  const target = `a file in flight of ${key}`;
  if ('held' in file) {
    try {
      return kernel.takeFd(file.held.pid, file.held.fd);
    } catch {
      throw new TargetError(`cannot restore ${key}: a file in flight in its queue was fd ${file.held.fd} of PID ${file.held.pid}, which was not restored; include it (or leave ${key} out)`);
    }
  }
  if ('eventfd' in file) return kernel.eventFds.eventfd(BigInt(file.eventfd.count), (file.eventfd.semaphore ? EFD_SEMAPHORE : 0) | (file.statusFlags & O_NONBLOCK), target);
  const { inode, end, capacity, data } = file.pipe;
  const ends = pipes.get(inode) ?? kernel.pipes.create({ data: Buffer.from(data, 'base64'), capacity }, target);
  pipes.set(inode, ends);
  // Its own open file description on the pipe, with its own flags: the pipe reopened through /proc.
  return openSync(`/proc/self/fd/${ends[end === 'read' ? 0 : 1]}`, (end === 'read' ? O_RDONLY : O_WRONLY) | file.statusFlags | O_CLOEXEC);
}
