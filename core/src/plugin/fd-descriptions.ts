import type { RecordCheckContext } from './contract.js';
import type { Kernel } from '../kernel/kernel.js';
import type { FdInfo } from '../kernel/procfs.js';
import type { RemoteTask } from '../kernel/remote-task.js';
import { O_CLOEXEC } from '../kernel/syscalls.js';

/** One descriptor number of an open file description, as a plugin records it. */
export interface DescriptorNumber {
  fd: number;
  closeOnExec: boolean;
}

/** An open file description of a process and every descriptor it has on it (one, or several after dup). */
export interface OpenDescription {
  /** What Procfs.fds says of its lowest descriptor. */
  info: FdInfo;
  fds: DescriptorNumber[];
  /** Its file status flags (O_NONBLOCK …), without the access mode and close-on-exec. */
  statusFlags: number;
}

const O_ACCMODE = 3;

/**
 * Whether a descriptor is the anonymous-inode object the kernel names `name` ("eventfd",
 * "timerfd" …): on the anonymous-inode filesystem, the link is the kernel's name for the inode,
 * which no path can imitate.
 */
export function isAnonInode(info: FdInfo, name: string): boolean {
  return 'what' in info.kind && info.kind.kind === 'anon-inode' && (info.link === `anon_inode:[${name}]` || info.link === `anon_inode:${name}`);
}

/**
 * The open file descriptions among `fds` (the descriptors of `pid`) that `wanted` picks (eventfds, timerfds …) with the
 * descriptors on each: dups of one description are told apart from separate ones by kcmp(2), as
 * the kernel sees them. A plugin that owns a kind of descriptor saves each description once.
 */
export function descriptionsOf(kernel: Kernel, pid: number, fds: readonly FdInfo[], wanted: (info: FdInfo) => boolean): OpenDescription[] {
  const found: OpenDescription[] = [];
  for (const info of fds) {
    if (!wanted(info)) continue;
    const number = { fd: info.fd, closeOnExec: (info.flags & O_CLOEXEC) !== 0 };
    const same = found.find((d) => kernel.sameOpenFile(pid, d.info.fd, pid, info.fd));
    if (same) same.fds.push(number);
    else found.push({ info, fds: [number], statusFlags: info.flags & ~O_CLOEXEC & ~O_ACCMODE });
  }
  return found;
}

/** Another process that holds an open file description too (it inherited it across fork), and its numbers for it. */
export interface DescriptionHolder {
  pid: number;
  fds: DescriptorNumber[];
}

/** A description as first collected: its object's id, and the other processes found holding it since. */
export interface SharedDescription {
  readonly id: string;
  readonly holders: DescriptionHolder[];
}

/**
 * The open file descriptions collected so far in the processes of one checkpoint, by the plugin
 * type that saves them: a description that several processes hold (stdio inherited by fork, a
 * file whose offset parent and child move together) is saved once, by the object of the first
 * process found holding it, and given at restore to every holder. Told apart by kcmp(2).
 */
export class SharedDescriptions {
  private readonly found = new Map<string, { pid: number; fd: number; link: string; shared: SharedDescription }[]>();

  constructor(private readonly kernel: Kernel) {}

  /**
   * The description that `fds` of `pid` (one description: `info` is its lowest descriptor) is:
   * one already collected in another process, to which `pid` is then added as a holder, or a new
   * one with the id `id`.
   */
  holderOf(type: string, pid: number, info: FdInfo, fds: readonly DescriptorNumber[], id: string): SharedDescription {
    const list = this.found.get(type) ?? [];
    this.found.set(type, list);
    const first = list.find((d) => d.pid !== pid && d.link === info.link && this.kernel.sameOpenFile(d.pid, d.fd, pid, info.fd));
    if (first) {
      first.shared.holders.push({ pid, fds: [...fds] });
      return first.shared;
    }
    const shared = { id, holders: [] };
    list.push({ pid, fd: info.fd, link: info.link, shared });
    return shared;
  }
}

/** Gives the task cr's descriptor `local` on every number of `fds`, with the description's status flags. */
export function installDescription(task: RemoteTask, local: number, fds: readonly DescriptorNumber[], statusFlags: number): void {
  task.together(() => {
    task.installFds(fds.map(({ fd, closeOnExec }) => ({ localFd: local, fd, closeOnExec })));
    task.setStatusFlags(fds[0]!.fd, statusFlags);
  });
}

/**
 * What is wrong with a saved description of object `PID:FD` (the id descriptionsOfKind's users
 * give): it must hang below `tasks:PID`, start at FD, and name each descriptor once.
 */
export function descriptionProblems(fds: readonly DescriptorNumber[], ctx: Pick<RecordCheckContext, 'id' | 'parents'>, holders: readonly DescriptionHolder[] = []): string[] {
  const problems: string[] = [];
  const [pid, fd] = ctx.id.split(':');
  if (!ctx.parents.includes(`tasks:${pid}`)) problems.push(`it belongs to PID ${pid} but does not hang below tasks:${pid}`);
  if (String(fds[0]?.fd) !== fd) problems.push(`its first descriptor is ${fds[0]?.fd}, not ${fd}`);
  if (new Set(fds.map((d) => d.fd)).size !== fds.length) problems.push('it names one descriptor twice');
  return [...problems, ...holderProblems(holders, pid!, ctx.parents)];
}

/** What is wrong with the other holders of a description first held by `pid`: each hangs below its tasks object, once, with distinct numbers. */
export function holderProblems(holders: readonly { pid: number; fds: readonly { fd: number }[] }[], pid: string, parents: readonly string[]): string[] {
  const problems: string[] = [];
  const pids = holders.map((h) => h.pid);
  if (pids.includes(Number(pid)) || new Set(pids).size !== pids.length) problems.push('it names one holding process twice');
  for (const h of holders) {
    if (!parents.includes(`tasks:${h.pid}`)) problems.push(`PID ${h.pid} holds it but it does not hang below tasks:${h.pid}`);
    if (h.fds.length === 0 || new Set(h.fds.map((d) => d.fd)).size !== h.fds.length) problems.push(`PID ${h.pid} holds it on no descriptor, or on one twice`);
  }
  return problems;
}
