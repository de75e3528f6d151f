import { describe, expect, it } from 'vitest';
import { withoutZeroPages, type SourceRun } from '../src/zero-pages.js';

const PAGE = 4096;
const page = (fill: number) => new Uint8Array(PAGE).fill(fill);
const concat = (parts: Uint8Array[]) => Buffer.concat(parts);

async function run(chunks: Uint8Array[], sources: SourceRun[]) {
  const kept: { address: bigint; pages: number }[] = [];
  const out: Uint8Array[] = [];
  async function* source() {
    yield* chunks;
  }
  for await (const slice of withoutZeroPages(source(), sources, kept)) out.push(Buffer.from(slice));
  return { kept, bytes: concat(out) };
}

describe('withoutZeroPages', () => {
  it('drops all-zero pages of anonymous runs, splitting runs around them, across chunk boundaries', async () => {
    const sources = [{ address: 0x10000n, pages: 4, zeroFree: true }];
    const { kept, bytes } = await run([concat([page(1), page(0)]), concat([page(0), page(2)])], sources);
    expect(kept).toEqual([
      { address: 0x10000n, pages: 1 },
      { address: 0x13000n, pages: 1 },
    ]);
    expect(bytes).toEqual(concat([page(1), page(2)]));
  });

  it('keeps the zero pages of runs that are not zero-free (private copies of file pages)', async () => {
    const sources = [{ address: 0x20000n, pages: 2, zeroFree: false }];
    const { kept, bytes } = await run([concat([page(0), page(3)])], sources);
    expect(kept).toEqual([{ address: 0x20000n, pages: 2 }]);
    expect(bytes).toEqual(concat([page(0), page(3)]));
  });

  it('never joins two source runs into one, even where they adjoin', async () => {
    const sources = [
      { address: 0x30000n, pages: 1, zeroFree: true },
      { address: 0x31000n, pages: 1, zeroFree: false },
    ];
    const { kept } = await run([concat([page(4), page(5)])], sources);
    expect(kept).toEqual([
      { address: 0x30000n, pages: 1 },
      { address: 0x31000n, pages: 1 },
    ]);
  });

  it('keeps a page whose only set byte is anywhere in it, first, last or between the bytes looked at first', async () => {
    const withByteAt = (offset: number) => {
      const p = page(0);
      p[offset] = 9;
      return p;
    };
    const offsets = [0, 1, 100, 2047, 4000, PAGE - 1];
    const sources = [{ address: 0x40000n, pages: offsets.length + 1, zeroFree: true }];
    const { kept, bytes } = await run([concat([...offsets.map(withByteAt), page(0)])], sources);
    expect(kept).toEqual([{ address: 0x40000n, pages: offsets.length }]);
    expect(bytes).toEqual(concat(offsets.map(withByteAt)));
  });
});
