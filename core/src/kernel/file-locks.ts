import { UnsupportedError } from '../errors.js';
import type { RemoteTask } from './remote-task.js';
import { encodeStruct, flockStruct } from './structs.js';
import { SYS } from './syscalls.js';

/** flock(2), fcntl(2) record locks (owned by the process), OFD locks (owned by the open file) and leases. */
export type FileLockKind = 'flock' | 'posix' | 'ofd' | 'lease';

/** A lock as /proc/PID/fdinfo/FD lists it on the file that descriptor is open on. */
export interface FileLock {
  kind: FileLockKind;
  /** A shared (read) or exclusive (write) lock; a lease's kind of lease. */
  type: 'read' | 'write';
  /** The first byte locked, and the last one or undefined for "to the end of the file, however long". */
  start: bigint;
  end: bigint | undefined;
  /** Device (major:minor in hex, as the kernel prints it) and inode of the locked file. */
  device: string;
  inode: bigint;
  /** A lease the kernel is breaking (another open is waiting for it), or a lock it cannot hold again as such. */
  transient: boolean;
}

/** What taking a lock again needs: which kind, shared or exclusive, and the bytes. */
export type LockRequest = Pick<FileLock, 'kind' | 'type' | 'start' | 'end'>;

const KINDS: Readonly<Record<string, FileLockKind>> = { FLOCK: 'flock', POSIX: 'posix', OFDLCK: 'ofd', LEASE: 'lease' };
const LINE = /^lock:\s+\d+:\s+(\S+)\s+(\S+)\s+(\S+)\s+-?\d+\s+([0-9a-f]+:[0-9a-f]+):(\d+)\s+(\d+)\s+(\d+|EOF)$/;

/**
 * The locks of the "lock:" lines of a /proc/PID/fdinfo/FD text: those the open file owns (flock,
 * OFD, leases) and the process's record locks on its inode. A kind cr does not know (an NFS
 * delegation) is refused naming the line, as is a lock neither read nor write.
 */
export function parseFileLocks(fdinfo: string, where: string): FileLock[] {
  const locks: FileLock[] = [];
  for (const line of fdinfo.split('\n')) {
    if (!line.startsWith('lock:')) continue;
    const m = LINE.exec(line.trim());
    const kind = m && KINDS[m[1]!];
    if (!m || !kind || (m[3] !== 'READ' && m[3] !== 'WRITE')) throw new UnsupportedError(`${where} lists a lock cr cannot restore: "${line.trim()}"`);
    locks.push({
      kind,
      type: m[3] === 'READ' ? 'read' : 'write',
      start: BigInt(m[6]!),
      end: m[7] === 'EOF' ? undefined : BigInt(m[7]!),
      device: m[4]!,
      inode: BigInt(m[5]!),
      transient: kind === 'lease' ? m[2] !== 'ACTIVE' : false,
    });
  }
  return locks;
}

const LOCK_SH = 1;
const LOCK_EX = 2;
const LOCK_NB = 4;
const F_SETLK = 6;
const F_OFD_SETLK = 37;
const F_SETLEASE = 1024;
const F_RDLCK = 0;
const F_WRLCK = 1;
const SEEK_SET = 0;
const FLOCK = { name: 'flock', nr: 73 } as const;
const SET_LOCK = { posix: { name: 'fcntl(F_SETLK)', nr: SYS.fcntl }, ofd: { name: 'fcntl(F_OFD_SETLK)', nr: SYS.fcntl } } as const;
const SET_LEASE = { name: 'fcntl(F_SETLEASE)', nr: SYS.fcntl } as const;

/** Takes a saved lock again inside a restored task (Procfs.fds reads them, on each FdInfo). */
export class FileLocks {
  /**
   * Takes `lock` on the task's descriptor `fd`, never waiting: a conflicting lock someone else
   * holds is an EAGAIN (or EWOULDBLOCK) KernelError naming the call, rather than a restore that hangs.
   */
  take(task: RemoteTask, fd: number, lock: LockRequest): void {
    const type = lock.type === 'read' ? F_RDLCK : F_WRLCK;
    switch (lock.kind) {
      case 'flock':
        task.syscall(FLOCK, [fd, (lock.type === 'read' ? LOCK_SH : LOCK_EX) | LOCK_NB]);
        return;
      case 'lease':
        task.syscall(SET_LEASE, [fd, F_SETLEASE, type]);
        return;
      case 'posix':
      case 'ofd': {
        // A length of 0 locks to the end of the file, whatever its size becomes.
        const length = lock.end === undefined ? 0n : lock.end - lock.start + 1n;
        const request = encodeStruct(flockStruct, { l_type: type, l_whence: SEEK_SET, l_start: lock.start, l_len: length, l_pid: 0 });
        task.syscall(SET_LOCK[lock.kind], [fd, lock.kind === 'posix' ? F_SETLK : F_OFD_SETLK, task.put(request)]);
      }
    }
  }
}
