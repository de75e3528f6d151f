import { PAGE_SIZE, PROT_WRITE, type Kernel, type PageRun, type PreCopy, type PreCopyContext, type WriteTracker } from '@cr/core';
import type { MmRecord } from './record.js';
import { classify } from './classify.js';
import { intersect, pageCount, spansOf, splitByMembership, subtract, union, type Span } from './page-spans.js';
import { withoutZeroPages } from './zero-pages.js';
import { ParentPages } from './parent-pages.js';

/** One round's copy: its blob, the runs it holds (in the blob's order), the pages the parent image holds as read, and every page it read (the all-zero ones too). */
interface Round {
  blob: string;
  stored: PageRun[];
  reused: Span[];
  copied: Span[];
}

/** What save takes from a pre-copy: the blobs' records, and the pages they restore correctly. */
export interface Settled {
  precopied: NonNullable<MmRecord['precopied']>;
  /** Pages whose contents the pre-copy holds as they are now (or knows to be all zeros, or to be in the parent image). */
  covered: Span[];
  /** Of those, the pages the parent image holds (`--parent`). */
  fromParent: Span[];
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/**
 * The private anonymous memory of a running process, copied before the freeze (`--pre-copy`):
 * the first round write-protects every such mapping (see WriteTracker) and copies its present
 * pages; each later round copies the pages written since the one before, protecting them again
 * in the same walk. Once the process is frozen, `settle` asks which copied pages are still
 * unwritten: those are restored from the rounds' blobs, and save reads only the rest.
 *
 * Pages the process zapped since (MADV_DONTNEED) read as unwritten but are no longer present;
 * mappings it made since are not tracked; memory it unmapped while a round read it comes as zeros
 * and counts as not copied: a page is taken from a round only if it is still present, unwritten,
 * in a tracked mapping, and was read whole.
 */
export class MemoryPreCopy implements PreCopy {
  private readonly rounds: Round[] = [];
  /** The mappings write-protected in the first round. */
  private ranges: { start: bigint; end: bigint }[] = [];
  private tracker: WriteTracker | undefined;

  constructor(
    private readonly kernel: Kernel,
    readonly pid: number,
    private readonly ctx: PreCopyContext,
  ) {
    this.tracker = kernel.trackWrites(pid);
  }

  async round(): Promise<number> {
    const tracker = this.tracker;
    if (!tracker) return 0;
    let runs: PageRun[];
    try {
      runs = this.rounds.length === 0 ? this.protectAll(tracker) : this.ranges.flatMap((r) => tracker.takeWritten(r.start, r.end));
    } catch (err) {
      // The process exited, or changed under the walk: its memory is copied when frozen, if it is still there.
      this.ctx.log.debug({ err }, `pre-copy of PID ${this.pid} stops: ${(err as Error).message}`);
      this.end();
      return 0;
    }
    const blob = `precopy-${this.rounds.length}`;
    const stored: PageRun[] = [];
    let lost: Span[] = [];
    const pages = runs.reduce((n, r) => n + r.pages, 0);
    const read = this.kernel.memory.read(this.pid, runs, { unreadable: (range) => (lost = union(lost, spansOf([{ address: range.address, pages: Math.ceil(range.length / PAGE_SIZE) }]))) });
    const parent = this.ctx.parent ? new ParentPages(this.ctx.parent) : undefined;
    const unchanged = parent ? { same: (address: bigint, page: Uint8Array) => parent.same(address, page), reused: [] as PageRun[] } : undefined;
    try {
      await this.ctx.writeBlob(blob, withoutZeroPages(read, runs.map((r) => ({ ...r, zeroFree: true })), stored, unchanged), { expectedSize: pages * PAGE_SIZE });
    } finally {
      parent?.close();
    }
    const copied = subtract(spansOf(runs), lost);
    this.rounds.push({ blob, stored, reused: intersect(spansOf(unchanged?.reused ?? []), copied), copied });
    this.ctx.log.debug({ round: this.rounds.length - 1, pages, stored: stored.reduce((n, r) => n + r.pages, 0) }, `pre-copy round ${this.rounds.length - 1} of PID ${this.pid}: ${pages} page(s)`);
    return pages;
  }

  /**
   * Write-protects the writable private anonymous mappings that hold pages, then lists their
   * present pages (protect first: a write in between is seen). Protection gives a mapping page
   * tables all over (about 0.2% of its size), so mappings with nothing to copy are left alone:
   * whatever the process writes there is copied once it is frozen.
   */
  private protectAll(tracker: WriteTracker): PageRun[] {
    const writable = this.kernel.vmas(this.pid).filter((v) => (v.prot & PROT_WRITE) !== 0 && classify(v, this.pid) === 'anon');
    const present = this.kernel.pageRunsOf(this.pid, writable.map((v) => ({ start: v.start, end: v.end, selection: 'present' as const })));
    const holding = writable.filter((_, i) => present[i]!.length > 0);
    this.ranges = holding.map((v) => ({ start: v.start, end: v.end }));
    for (const r of this.ranges) tracker.protect(r.start, r.end);
    return this.kernel.pageRunsOf(this.pid, this.ranges.map((r) => ({ ...r, selection: 'present' as const }))).flat();
  }

  /**
   * Of a frozen process whose present private anonymous pages are `present`: which pages the
   * rounds hold as they are now, and the rounds' blobs as the record lists them (what is stale
   * marked so). The tracking goes on until `end`, which cr calls once the process runs again:
   * lifting the protection of a large mapping takes a while.
   */
  settle(present: readonly Span[], mappings: readonly { start: bigint; end: bigint }[]): Settled {
    const tracker = this.tracker;
    const unwritten = tracker ? spansOf(mappings.flatMap((m) => tracker.unwritten(m.start, m.end))) : [];
    const current = intersect(unwritten, present);
    let later: Span[] = [];
    let covered: Span[] = [];
    let fromParent: Span[] = [];
    const valid: Span[][] = [];
    for (let i = this.rounds.length - 1; i >= 0; i--) {
      const { copied, reused } = this.rounds[i]!;
      valid[i] = subtract(intersect(copied, current), later);
      covered = union(covered, valid[i]!);
      fromParent = union(fromParent, intersect(reused, valid[i]!));
      later = union(later, copied);
    }
    const precopied = this.rounds.map((round, i) => ({
      blob: round.blob,
      runs: splitByMembership(round.stored, valid[i]!).map(({ run, kept }) => ({ address: hex(run.address), pages: run.pages, ...(kept ? {} : { stale: true as const }) })),
    }));
    this.ctx.log.debug({ covered: pageCount(covered) }, `pre-copy of PID ${this.pid}: ${pageCount(covered)} page(s) still as copied`);
    return { precopied, covered, fromParent };
  }

  /** Whether the mapping [start, end) is write-protected by this pre-copy (its VmFlags then show "uw", which is cr's, not the program's). */
  protects(start: bigint, end: bigint): boolean {
    return this.tracker !== undefined && this.ranges.some((r) => r.start <= start && end <= r.end);
  }

  end(): void {
    const tracker = this.tracker;
    this.tracker = undefined;
    tracker?.close();
  }
}

