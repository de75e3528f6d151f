import { PAGE_SIZE, type PageRun } from '@cr/core';

/** A run of pages to read, and whether its all-zero pages may be left out of the image. */
export interface SourceRun extends PageRun {
  /** Anonymous memory: a page left out comes back as zeros by itself, so it need not be saved. */
  zeroFree: boolean;
}

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);
/**
 * Bytes of a page looked at before it is compared whole: one of them set tells a page of data
 * (nearly every page of a heap) without a call into native code and a view per page, which cost
 * about 30 ms a GiB.
 */
const PROBES = [0, 8, 64, 512, 1024, 2048, 3072, PAGE_SIZE - 8, PAGE_SIZE - 1];

function isZeroPage(chunk: Uint8Array, at: number): boolean {
  for (const probe of PROBES) if (chunk[at + probe] !== 0) return false;
  return Buffer.compare(chunk.subarray(at, at + PAGE_SIZE), ZERO_PAGE) === 0;
}

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
  // The run of `kept` (of `reused`) the page before this one went to, if it went there: this one
  // adjoins it, as both are of one source run.
  let last: PageRun | undefined;
  let lastReused: PageRun | undefined;
  const addressOf = (source: SourceRun) => source.address + BigInt(page * PAGE_SIZE);
  for await (const chunk of pages) {
    let from = -1;
    for (let at = 0; at < chunk.byteLength; at += PAGE_SIZE) {
      const source = sources[run]!;
      const zero = source.zeroFree && isZeroPage(chunk, at);
      const reused = !zero && unchanged !== undefined && unchanged.same(addressOf(source), chunk.subarray(at, at + PAGE_SIZE));
      if (zero || reused) {
        if (from >= 0) yield chunk.subarray(from, at);
        from = -1;
        last = undefined;
        if (!reused) lastReused = undefined;
        else if (lastReused) lastReused.pages++;
        else unchanged.reused.push((lastReused = { address: addressOf(source), pages: 1 }));
      } else {
        if (from < 0) from = at;
        if (last) last.pages++;
        else kept.push((last = { address: addressOf(source), pages: 1 }));
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
