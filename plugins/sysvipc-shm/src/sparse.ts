import { ImageError, PAGE_SIZE, type ByteRange } from '@cr/core';

const ZERO_PAGE = new Uint8Array(PAGE_SIZE);
/** The largest slice handed on at once: the size blobs are written in. */
const SLICE = 8 << 20;

/**
 * The bytes of `view` within `ranges` (the pages a segment holds), except its all-zero pages, as
 * slices of `view` itself; `kept` receives the ranges handed on, in order. A segment's page that
 * was only ever read holds zeros but takes memory all the same: it is left out like a hole, and
 * comes back as one, reading zeros.
 */
export function* nonZeroPages(view: Uint8Array, ranges: readonly ByteRange[], kept: ByteRange[]): Generator<Uint8Array> {
  for (const range of ranges) {
    const end = range.offset + range.length;
    let from = -1;
    for (let at = range.offset; at < end; at += PAGE_SIZE) {
      const page = view.subarray(at, Math.min(at + PAGE_SIZE, end));
      const zero = page.byteLength === PAGE_SIZE && Buffer.compare(page, ZERO_PAGE) === 0;
      if (!zero && from < 0) from = at;
      const next = Math.min(at + PAGE_SIZE, end);
      if (from >= 0 && (zero || next === end || next - from >= SLICE)) {
        const to = zero ? at : next;
        const last = kept.at(-1);
        if (last && last.offset + last.length === from) last.length += to - from;
        else kept.push({ offset: from, length: to - from });
        yield view.subarray(from, to);
        from = -1;
      }
    }
  }
}

/**
 * Writes the bytes of `chunks` into `view` at `ranges`, in order: the inverse of nonZeroPages.
 * The chunks must hold exactly the ranges' total length.
 */
export async function scatter(chunks: AsyncIterable<Uint8Array>, view: Uint8Array, ranges: readonly ByteRange[], what: string): Promise<void> {
  let index = 0;
  let within = 0;
  for await (const chunk of chunks) {
    for (let off = 0; off < chunk.byteLength; ) {
      const range = ranges[index];
      if (!range) throw new ImageError(`${what}: the blob holds more bytes than its ranges`);
      const n = Math.min(range.length - within, chunk.byteLength - off);
      view.set(chunk.subarray(off, off + n), range.offset + within);
      off += n;
      within += n;
      if (within === range.length) {
        index++;
        within = 0;
      }
    }
  }
  if (index !== ranges.length) throw new ImageError(`${what}: the blob holds fewer bytes than its ranges`);
}
