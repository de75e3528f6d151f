import type { Mapping } from '@cr/core';
import { shmemOfVma } from '@cr/plugin-shmem';
import type { VmaRecord } from './record.js';

const SPECIAL: Record<string, VmaRecord['kind']> = { '[vdso]': 'vdso', '[vvar]': 'vvar', '[vvar_vclock]': 'vvar_vclock' };
const DELETED = ' (deleted)';

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
  if (path.endsWith(DELETED)) return { unsupported: `mapping of the deleted file ${path.slice(0, -DELETED.length)}` };
  if (path.startsWith('/')) return 'file';
  return { unsupported: `special mapping ${path}` };
}
