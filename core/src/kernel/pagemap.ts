import { closeSync, openSync, readSync } from 'node:fs';
import { nodeFsError } from './sysctl.js';

export const PAGE_SIZE = 4096;
const ENTRIES_PER_READ = 1 << 16;

const PRESENT = 1n << 63n;
const SWAPPED = 1n << 62n;
/** The page is a file page or shared anonymous memory, not a private anonymous (COW) copy. */
const FILE_OR_SHARED = 1n << 61n;

/** A run of consecutive pages worth saving. */
export interface PageRun {
  address: bigint;
  pages: number;
}

/** Which pages of a mapping hold data that exists nowhere else. */
export type PageSelection = 'present' | 'private-copies';

/**
 * Reads /proc/PID/pagemap for [start, end) and returns the runs of pages to save: for anonymous
 * memory every page present in RAM or swapped out ("present"); for a private file mapping only the
 * pages the program wrote to, which are anonymous copies ("private-copies"): the rest is still
 * the file's.
 */
export function pageRuns(pid: number, start: bigint, end: bigint, selection: PageSelection): PageRun[] {
  const path = `/proc/${pid}/pagemap`;
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw nodeFsError('open', path, err);
  }
  const runs: PageRun[] = [];
  try {
    const first = Number(start / BigInt(PAGE_SIZE));
    const count = Number((end - start) / BigInt(PAGE_SIZE));
    const buf = Buffer.alloc(ENTRIES_PER_READ * 8);
    let current: PageRun | undefined;
    for (let done = 0; done < count; ) {
      const want = Math.min(ENTRIES_PER_READ, count - done);
      const n = readSync(fd, buf, 0, want * 8, (first + done) * 8) / 8;
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        const entry = buf.readBigUInt64LE(i * 8);
        const keep =
          (entry & SWAPPED) !== 0n || ((entry & PRESENT) !== 0n && (selection === 'present' || (entry & FILE_OR_SHARED) === 0n));
        if (!keep) {
          current = undefined;
          continue;
        }
        const address = BigInt(first + done + i) * BigInt(PAGE_SIZE);
        if (current) current.pages++;
        else runs.push((current = { address, pages: 1 }));
      }
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return runs;
}
