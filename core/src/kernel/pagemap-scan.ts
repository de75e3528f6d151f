import { closeSync, openSync } from 'node:fs';
import type { Libc } from './libc.js';
import { PAGE_SIZE, type PageRun } from './pagemap.js';
import { decodeStruct, pageRegion, structSize, u64 } from './structs.js';
import { nodeFsError } from './sysctl.js';

/** _IOWR('f', 16, struct pm_scan_arg): declared here, the installed uapi headers predate it. */
const PAGEMAP_SCAN = 0xc0606610;
/** Write-protect the pages that match, in the same walk that reports them. */
const PM_SCAN_WP_MATCHING = 1 << 0;
export const PAGE_IS_WPALLOWED = 1 << 0;
export const PAGE_IS_WRITTEN = 1 << 1;
/** The page is a file page or shared anonymous memory, not a private anonymous (COW) copy. */
export const PAGE_IS_FILE = 1 << 2;
export const PAGE_IS_PRESENT = 1 << 3;
export const PAGE_IS_SWAPPED = 1 << 4;
export const PAGE_IS_PFNZERO = 1 << 5;
const REGIONS_PER_CALL = 4096;

/** A run of pages that share the categories asked for. */
export interface PageRegion {
  address: bigint;
  pages: number;
  categories: number;
}

/** Which pages a scan selects: those whose categories, with `inverted` flipped, have all of `mask` and one of `anyOf` (if given). */
export interface PageFilter {
  mask: number;
  inverted?: number;
  anyOf?: number;
  /** The categories reported for each region (the regions are split where these differ). */
  returned: number;
}

/**
 * The PAGEMAP_SCAN ioctl on /proc/PID/pagemap (Linux 6.7+): the categories of a process's pages
 * (present, swapped, the shared zero page, written since write-protected …) in one walk of its
 * page tables, as runs rather than a word per page; with `protect`, the pages found are
 * write-protected again in that same walk, so that no write between report and protection is lost.
 */
export class PagemapScanner {
  private readonly fd: number;
  private readonly regions = Buffer.alloc(REGIONS_PER_CALL * structSize(pageRegion));

  constructor(
    private readonly libc: Libc,
    readonly pid: number,
  ) {
    const path = `/proc/${pid}/pagemap`;
    try {
      this.fd = openSync(path, 'r');
    } catch (err) {
      throw nodeFsError('open', path, err);
    }
  }

  /** The regions of [start, end) that `filter` selects, in address order. */
  scan(start: bigint, end: bigint, filter: PageFilter, protect = false): PageRegion[] {
    const found: PageRegion[] = [];
    const target = `/proc/${this.pid}/pagemap`;
    for (let from = start; from < end; ) {
      const { filled, walkEnd } = this.libc.pagemapScan(
        this.fd,
        PAGEMAP_SCAN,
        { start: from, end, flags: protect ? PM_SCAN_WP_MATCHING : 0, inverted: filter.inverted ?? 0, mask: filter.mask, anyOf: filter.anyOf ?? 0, returned: filter.returned },
        this.regions,
        target,
      );
      for (let i = 0; i < filled; i++) {
        const r = decodeStruct<{ start: number | bigint; end: number | bigint; categories: number | bigint }>(this.regions.subarray(i * structSize(pageRegion)), pageRegion);
        const address = u64(r.start);
        found.push({ address, pages: Number((u64(r.end) - address) / BigInt(PAGE_SIZE)), categories: Number(r.categories) });
      }
      // A vector not filled means the walk reached `end`. walk_end may not say so: 6.18 leaves it
      // where an earlier round of the same call stopped (its own buffer holds 512 regions), and
      // going on from there would report the regions after it twice; so a full vector goes on
      // from the end of its last region if that is further.
      if (filled < REGIONS_PER_CALL) break;
      const reported = found[found.length - 1]!;
      const next = [walkEnd, reported.address + BigInt(reported.pages * PAGE_SIZE)].reduce((a, b) => (a > b ? a : b));
      if (next <= from) break;
      from = next;
    }
    return found;
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** Ranges of a process's pages, in one scanner: its pagemap opened once for all of them (see Kernel.pageRunsOf). */
export class PageScans {
  private readonly scanner: PagemapScanner;

  constructor(libc: Libc, pid: number) {
    this.scanner = new PagemapScanner(libc, pid);
  }

  /**
   * The pages of [start, end) that hold data of their own: present in RAM or swapped out, but not
   * the shared zero page (memory only read, never written, which restores as zeros by itself).
   */
  present(start: bigint, end: bigint): PageRun[] {
    return this.scanner.scan(start, end, { mask: PAGE_IS_PFNZERO, inverted: PAGE_IS_PFNZERO, anyOf: PAGE_IS_PRESENT | PAGE_IS_SWAPPED, returned: PAGE_IS_PRESENT | PAGE_IS_SWAPPED }).map(({ address, pages }) => ({ address, pages }));
  }

  /**
   * The pages of a private file mapping [start, end) that the program wrote to: anonymous copies
   * in RAM (not file pages), and pages swapped out, which only such copies can be.
   */
  privateCopies(start: bigint, end: bigint): PageRun[] {
    const regions = this.scanner.scan(start, end, { mask: 0, anyOf: PAGE_IS_PRESENT | PAGE_IS_SWAPPED, returned: PAGE_IS_PRESENT | PAGE_IS_SWAPPED | PAGE_IS_FILE });
    const runs: PageRun[] = [];
    for (const { address, pages, categories } of regions) {
      if ((categories & PAGE_IS_SWAPPED) === 0 && (categories & PAGE_IS_FILE) !== 0) continue;
      const last = runs[runs.length - 1];
      if (last && last.address + BigInt(last.pages * PAGE_SIZE) === address) last.pages += pages;
      else runs.push({ address, pages });
    }
    return runs;
  }

  close(): void {
    this.scanner.close();
  }
}
