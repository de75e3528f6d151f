import { PAGE_SIZE, type PageRun } from '@cr/core';

/**
 * Sets of pages as sorted, disjoint, non-adjacent spans of page numbers [start, end): what
 * pre-copy computes with (which pages were copied, are unwritten since, are present now). Page
 * numbers of user addresses fit a double exactly, and cost far less than a BigInt per page.
 */
export interface Span {
  start: number;
  end: number;
}

const PAGE = BigInt(PAGE_SIZE);

/** The pages of `runs`, in any order, as a set. */
export function spansOf(runs: readonly PageRun[]): Span[] {
  const spans = runs.map((r) => ({ start: Number(r.address / PAGE), end: Number(r.address / PAGE) + r.pages })).filter((s) => s.end > s.start);
  spans.sort((a, b) => a.start - b.start);
  return normalized(spans);
}

/** The set as runs of pages, in address order. */
export function runsOf(spans: readonly Span[]): PageRun[] {
  return spans.map((s) => ({ address: BigInt(s.start) * PAGE, pages: s.end - s.start }));
}

export function pageCount(spans: readonly Span[]): number {
  return spans.reduce((n, s) => n + s.end - s.start, 0);
}

export function union(a: readonly Span[], b: readonly Span[]): Span[] {
  return normalized([...a, ...b].sort((x, y) => x.start - y.start));
}

export function intersect(a: readonly Span[], b: readonly Span[]): Span[] {
  const out: Span[] = [];
  for (let i = 0, j = 0; i < a.length && j < b.length; ) {
    const start = Math.max(a[i]!.start, b[j]!.start);
    const end = Math.min(a[i]!.end, b[j]!.end);
    if (start < end) out.push({ start, end });
    if (a[i]!.end < b[j]!.end) i++;
    else j++;
  }
  return out;
}

/** The pages of `a` that are not in `b`. */
export function subtract(a: readonly Span[], b: readonly Span[]): Span[] {
  const out: Span[] = [];
  let j = 0;
  for (const span of a) {
    let start = span.start;
    while (j < b.length && b[j]!.end <= start) j++;
    for (let k = j; k < b.length && b[k]!.start < span.end; k++) {
      if (b[k]!.start > start) out.push({ start, end: b[k]!.start });
      start = Math.max(start, b[k]!.end);
    }
    if (start < span.end) out.push({ start, end: span.end });
  }
  return out;
}

/**
 * Cuts runs of pages (in the order of the bytes of a blob) where they enter or leave `kept`, so
 * that each piece is wholly kept or wholly not; the pieces stay in the runs' order.
 */
export function splitByMembership(runs: readonly PageRun[], kept: readonly Span[]): { run: PageRun; kept: boolean }[] {
  const pieces: { run: PageRun; kept: boolean }[] = [];
  const piece = (start: number, end: number, isKept: boolean) => pieces.push({ run: { address: BigInt(start) * PAGE, pages: end - start }, kept: isKept });
  for (const run of runs) {
    const first = Number(run.address / PAGE);
    const end = first + run.pages;
    let at = first;
    for (let k = firstEndingAfter(kept, first); k < kept.length && kept[k]!.start < end; k++) {
      const from = Math.max(at, kept[k]!.start);
      const to = Math.min(end, kept[k]!.end);
      if (from > at) piece(at, from, false);
      piece(from, to, true);
      at = to;
    }
    if (at < end) piece(at, end, false);
  }
  return pieces;
}

/** The index of the first span that ends after page `page` (binary search). */
function firstEndingAfter(spans: readonly Span[], page: number): number {
  let lo = 0;
  let hi = spans.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (spans[mid]!.end <= page) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function normalized(sorted: Span[]): Span[] {
  const out: Span[] = [];
  for (const s of sorted) {
    const last = out[out.length - 1];
    if (last && s.start <= last.end) last.end = Math.max(last.end, s.end);
    else out.push({ ...s });
  }
  return out;
}
