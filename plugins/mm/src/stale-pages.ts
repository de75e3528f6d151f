import { CrError, PAGE_SIZE } from '@cr/core';

/**
 * Passes on the bytes of a pre-copy blob (runs of pages one after another, in `runs`' order)
 * but those of stale runs, which the process wrote again after they were copied. Each slice is
 * valid until the next one is asked for, like the chunks it comes from.
 */
export async function* withoutStale(chunks: AsyncIterable<Uint8Array>, runs: readonly { pages: number; stale?: true }[]): AsyncGenerator<Uint8Array> {
  let run = -1;
  let left = 0;
  for await (const chunk of chunks) {
    for (let at = 0; at < chunk.byteLength; ) {
      while (left === 0) {
        if (++run >= runs.length) throw new CrError(`a pre-copy blob holds more than the ${runs.length} run(s) its record lists`);
        left = runs[run]!.pages * PAGE_SIZE;
      }
      const n = Math.min(left, chunk.byteLength - at);
      if (!runs[run]!.stale) yield chunk.subarray(at, at + n);
      at += n;
      left -= n;
    }
  }
}
