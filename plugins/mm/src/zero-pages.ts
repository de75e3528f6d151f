import { PAGE_SIZE, type PageRun } from '@cr/core';

/** A run of pages to read, and whether its all-zero pages may be left out of the image. */
export interface SourceRun extends PageRun {
  /** Anonymous memory: a page left out comes back as zeros by itself, so it need not be saved. */
  zeroFree: boolean;
}

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);

/**
 * Passes on the pages read from `sources` (in their order, as `pages` yields them) except the
 * all-zero pages of zero-free runs, and records in `kept` the runs of pages that were passed on,
 * in the same order, each within its source run. A program's heap holds many pages it touched but never filled (calloc,
 * cleared buffers, the zero page behind memory it only read): they cost nothing to restore.
 * Each slice handed on is valid until the next one is asked for, like the chunks it comes from.
 */
export async function* withoutZeroPages(
  pages: AsyncIterable<Uint8Array>,
  sources: readonly SourceRun[],
  kept: PageRun[],
  /** For an incremental image: pages the parent image holds as they are, left out and listed in `reused`. */
  unchanged?: { same(address: bigint, page: Uint8Array): boolean; reused: PageRun[] },
): AsyncGenerator<Uint8Array> {
  let run = 0;
  let page = 0;
  let last: PageRun | undefined;
  let lastReused: PageRun | undefined;
  const add = (runs: PageRun[], previous: PageRun | undefined, address: bigint): PageRun => {
    if (previous && previous.address + BigInt(previous.pages * PAGE_SIZE) === address) {
      previous.pages++;
      return previous;
    }
    const added = { address, pages: 1 };
    runs.push(added);
    return added;
  };
  for await (const chunk of pages) {
    let from = -1;
    for (let at = 0; at < chunk.byteLength; at += PAGE_SIZE) {
      const source = sources[run]!;
      const address = source.address + BigInt(page * PAGE_SIZE);
      const bytes = chunk.subarray(at, at + PAGE_SIZE);
      const zero = source.zeroFree && Buffer.compare(bytes, ZERO_PAGE) === 0;
      const reused = !zero && unchanged !== undefined && unchanged.same(address, bytes);
      if (zero || reused) {
        if (from >= 0) yield chunk.subarray(from, at);
        from = -1;
        last = undefined;
        if (reused) lastReused = add(unchanged.reused, lastReused, address);
        else lastReused = undefined;
      } else {
        if (from < 0) from = at;
        last = add(kept, last, address);
        lastReused = undefined;
      }
      if (++page === source.pages) {
        // A saved run stays within the mapping it was read from, even where the next one adjoins it.
        run++;
        page = 0;
        last = undefined;
        lastReused = undefined;
      }
    }
    if (from >= 0) yield chunk.subarray(from);
  }
}
