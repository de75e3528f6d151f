import { PROT_WRITE, type Mapping } from '@cr/core';
import { shmemOfVma } from '@cr/plugin-shmem';
import type { VmaRecord } from './record.js';

const SPECIAL: Record<string, VmaRecord['kind']> = { '[vdso]': 'vdso', '[vvar]': 'vvar', '[vvar_vclock]': 'vvar_vclock' };
const DELETED = ' (deleted)';
/** How /proc/PID/maps names the ring io_setup(2) maps into the process. */
const AIO_RING = '/[aio] (deleted)';
/** Whether a path /proc shows is that of a file deleted since it was opened or mapped. */
export const isDeleted = (path: string) => path.endsWith(DELETED);
/** The path a deleted file had. */
export const withoutDeleted = (path: string) => (isDeleted(path) ? path.slice(0, -DELETED.length) : path);

/**
 * What kind of memory a mapping is, by what /proc/PID/smaps names it; undefined for what is not
 * the process's to save ([vsyscall], the same fixed page in every process), and an error message
 * for what cr cannot restore.
 */
export function classify(vma: Mapping, pid: number): VmaRecord['kind'] | undefined | { unsupported: string } {
  const { path } = vma;
  if (path === '[vsyscall]') return undefined;
  if (SPECIAL[path]) return SPECIAL[path];
  if (shmemOfVma(vma, pid)) return 'shmem';
  if (path === '' || path === '[heap]' || path === '[stack]' || path.startsWith('[anon:')) return 'anon';
  if (/^\/SYSV[0-9a-f]{8}( \(deleted\))?$/.test(path)) return 'sysv-shm';
  if (path === AIO_RING) return 'aio';
  if (isDeleted(path) && vma.shared && (vma.prot & PROT_WRITE) !== 0) {
    // Its bytes change under every process mapping it, and under any descriptor on it: one copy per process would split them.
    return { unsupported: `shared writable mapping of the deleted file ${withoutDeleted(path)}` };
  }
  if (path.startsWith('/')) return 'file';
  return { unsupported: `special mapping ${path}` };
}
