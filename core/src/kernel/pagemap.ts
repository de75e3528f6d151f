import { closeSync, openSync, readSync } from 'node:fs';
import { procDir } from './proc-dir.js';
import { nodeFsError } from './sysctl.js';

export const PAGE_SIZE = 4096;
const ENTRIES_PER_READ = 1 << 16;

// Flags in the high 32 bits of a 64-bit pagemap entry (bits 63, 62, 61 of the entry).
const PRESENT = 1 << 31;
const SWAPPED = 1 << 30;
/** The page is a file page or shared anonymous memory, not a private anonymous (COW) copy. */
const FILE_OR_SHARED = 1 << 29;

/** A run of consecutive pages worth saving. */
export interface PageRun {
  address: bigint;
  pages: number;
}

/** Which pages of a mapping hold data that exists nowhere else. */
export type PageSelection = 'present' | 'private-copies';

/** A range of a process's addresses and which of its pages to find (Kernel.pageRunsOf). */
export interface PageRange {
  start: bigint;
  end: bigint;
  selection: PageSelection;
}

/**
 * Reads /proc/PID/pagemap for [start, end) and returns the runs of pages to save: for anonymous
 * memory every page present in RAM or swapped out ("present"); for a private file mapping only the
 * pages the program wrote to, which are anonymous copies ("private-copies"): the rest is still
 * the file's.
 */
export function pageRuns(pid: number, start: bigint, end: bigint, selection: PageSelection): PageRun[] {
  const path = `${procDir(pid)}/pagemap`;
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
    // Read as 32-bit words (little-endian, as on x86_64): only the flags in the high word of each
    // entry matter, and comparing numbers is far cheaper than a BigInt per page (262144 a GiB).
    const words = new Uint32Array(ENTRIES_PER_READ * 2);
    const bytes = new Uint8Array(words.buffer);
    const wanted = selection === 'present' ? PRESENT | SWAPPED : SWAPPED;
    let current: PageRun | undefined;
    for (let done = 0; done < count; ) {
      const want = Math.min(ENTRIES_PER_READ, count - done);
      const n = Math.floor(readSync(fd, bytes, 0, want * 8, (first + done) * 8) / 8);
      if (n <= 0) break;
      for (let i = 0; i < n; i++) {
        const high = words[i * 2 + 1]!;
        const keep = (high & wanted) !== 0 || (selection === 'private-copies' && (high & (PRESENT | FILE_OR_SHARED)) === PRESENT);
        if (!keep) {
          current = undefined;
          continue;
        }
        if (current) current.pages++;
        else runs.push((current = { address: BigInt(first + done + i) * BigInt(PAGE_SIZE), pages: 1 }));
      }
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return runs;
}
