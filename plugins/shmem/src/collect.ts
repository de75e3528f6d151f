import { statSync, statfsSync } from 'node:fs';
import { FS_MAGIC, UnsupportedError, type FdInfo, type Mapping, procDir } from '@cr/core';

const MEMFD = '/memfd:';
const DELETED = ' (deleted)';
const SYSV_SEGMENT = /^\/SYSV[0-9a-f]{8}( \(deleted\))?$/;

/**
 * What a shared memory object is: a memfd (with its name), shared anonymous memory, or a tmpfs
 * file deleted while mapped (a POSIX semaphore or shm_open object after shm_unlink, /dev/shm/NAME).
 */
export type ShmemKind = { kind: 'memfd'; name: string } | { kind: 'anonymous' } | { kind: 'deleted'; path: string };

/** A shared memory object as a process reaches it, and where cr can open it. */
export interface ShmemSource {
  inode: number;
  what: ShmemKind;
  /** /proc/PID/fd/N or /proc/PID/map_files/START-END: opening it opens the object itself. */
  path: string;
}

function memfdName(path: string): string | undefined {
  if (!path.startsWith(MEMFD)) return undefined;
  return path.endsWith(DELETED) ? path.slice(MEMFD.length, -DELETED.length) : path.slice(MEMFD.length);
}

/** The shared memory object behind a descriptor: a memfd, which /proc names "/memfd:NAME (deleted)". */
export function shmemOfFd(info: FdInfo): ShmemKind | undefined {
  if (!('what' in info.kind) || info.kind.kind !== 'memfd') return undefined;
  const name = memfdName(info.link);
  return name === undefined ? undefined : { kind: 'memfd', name };
}

/**
 * The shared memory object behind a mapping of process `pid`: a memfd mapped shared or private,
 * shared anonymous memory, which the kernel backs with a shmem file it calls "/dev/zero (deleted)"
 * ("[anon_shmem:NAME]" once named with PR_SET_VMA_ANON_NAME), or a file deleted while mapped whose
 * filesystem (statfs of the mapping itself, not its name) is tmpfs.
 */
export function shmemOfVma(vma: Pick<Mapping, 'path' | 'shared' | 'start' | 'end'>, pid: number): ShmemKind | undefined {
  const name = memfdName(vma.path);
  if (name !== undefined) return { kind: 'memfd', name };
  if (vma.shared && (vma.path === `/dev/zero${DELETED}` || vma.path.startsWith('[anon_shmem:'))) return { kind: 'anonymous' };
  // A SysV segment is a tmpfs file too, on the kernel's own mount: the sysvipc-shm plugin's.
  if (SYSV_SEGMENT.test(vma.path)) return undefined;
  if (vma.path.startsWith('/') && vma.path.endsWith(DELETED) && onTmpfs(mappedFile(pid, vma))) return { kind: 'deleted', path: vma.path.slice(0, -DELETED.length) };
  return undefined;
}

/** The file a mapping maps, as /proc/PID/map_files opens it. */
export function mappedFile(pid: number, vma: Pick<Mapping, 'start' | 'end'>): string {
  return `${procDir(pid)}/map_files/${vma.start.toString(16)}-${vma.end.toString(16)}`;
}

function onTmpfs(path: string): boolean {
  try {
    return statfsSync(path).type === FS_MAGIC.TMPFS;
  } catch {
    // The mapping went away while we looked (a dry run of a running process).
    return false;
  }
}

/** Whether the file at `path` is on hugetlbfs (a memfd made with MFD_HUGETLB), which cr cannot save yet. */
export function onHugePages(path: string): boolean {
  return statfsSync(path).type === FS_MAGIC.HUGETLBFS;
}

/**
 * The shared memory objects process `pid` reaches through `fds` and `vmas`, each once. A memfd on
 * huge pages is left to the files plugin, which refuses its descriptors by name (they can be
 * left out); a mapping of one is refused here.
 */
export function shmemSources(pid: number, fds: readonly FdInfo[], vmas: readonly Mapping[]): ShmemSource[] {
  const found = new Map<number, ShmemSource>();
  const add = (path: string, what: ShmemKind) => {
    const inode = Number(statSync(path).ino);
    if (!found.has(inode)) found.set(inode, { inode, what, path });
  };
  for (const info of fds) {
    const what = shmemOfFd(info);
    const path = `${procDir(pid)}/fd/${info.fd}`;
    if (what && !onHugePages(path)) add(path, what);
  }
  for (const vma of vmas) {
    const what = shmemOfVma(vma, pid);
    if (!what) continue;
    const path = mappedFile(pid, vma);
    if (onHugePages(path)) {
      throw new UnsupportedError(`PID ${pid}: mapping 0x${vma.start.toString(16)}-0x${vma.end.toString(16)} maps a memfd on huge pages (${vma.path}), which cr cannot checkpoint yet`);
    }
    add(path, what);
  }
  return [...found.values()];
}
