import { describe, expect, it } from 'vitest';
import { intersect, pageCount, runsOf, spansOf, splitByMembership, subtract, union } from '../src/page-spans.js';
import { withoutStale } from '../src/stale-pages.js';

const P = 4096n;
const run = (page: number, pages: number) => ({ address: BigInt(page) * P, pages });
const spans = (...pairs: [number, number][]) => pairs.map(([start, end]) => ({ start, end }));

describe('page spans', () => {
  it('sorts and merges runs that touch or overlap into a set', () => {
    expect(spansOf([run(10, 2), run(0, 4), run(4, 1), run(11, 5)])).toEqual(spans([0, 5], [10, 16]));
    expect(runsOf(spans([0, 5]))).toEqual([run(0, 5)]);
    expect(pageCount(spans([0, 5], [10, 16]))).toBe(11);
  });

  it('intersects, subtracts and unites', () => {
    const a = spans([0, 10], [20, 30]);
    const b = spans([5, 25], [28, 40]);
    expect(intersect(a, b)).toEqual(spans([5, 10], [20, 25], [28, 30]));
    expect(subtract(a, b)).toEqual(spans([0, 5], [25, 28]));
    expect(subtract(b, a)).toEqual(spans([10, 20], [30, 40]));
    expect(union(a, b)).toEqual(spans([0, 40]));
    expect(subtract(a, [])).toEqual(a);
    expect(intersect(a, [])).toEqual([]);
  });

  it('cuts runs in blob order where they enter or leave the kept set, keeping that order', () => {
    const pieces = splitByMembership([run(20, 10), run(0, 10)], spans([2, 4], [22, 23], [29, 40]));
    expect(pieces.map(({ run: r, kept }) => [Number(r.address / P), r.pages, kept])).toEqual([
      [20, 2, false],
      [22, 1, true],
      [23, 6, false],
      [29, 1, true],
      [0, 2, false],
      [2, 2, true],
      [4, 6, false],
    ]);
  });
});

describe('withoutStale', () => {
  async function* chunks(bytes: Uint8Array, size: number) {
    for (let at = 0; at < bytes.length; at += size) yield bytes.subarray(at, at + size);
  }

  it('passes on the bytes of the runs that are not stale, whatever the chunks', async () => {
    const blob = new Uint8Array(5 * 4096);
    for (let page = 0; page < 5; page++) blob.fill(page + 1, page * 4096, (page + 1) * 4096);
    for (const size of [1000, 4096, 3 * 4096, blob.length]) {
      const kept: number[] = [];
      for await (const slice of withoutStale(chunks(blob, size), [{ pages: 1 }, { pages: 2, stale: true }, { pages: 2 }])) kept.push(...slice);
      expect(kept.filter((_, i) => i % 4096 === 0)).toEqual([1, 4, 5]);
      expect(kept.length).toBe(3 * 4096);
    }
  });

  it('refuses a blob longer than its runs', async () => {
    const read = async () => {
      for await (const slice of withoutStale(chunks(new Uint8Array(2 * 4096), 4096), [{ pages: 1 }])) void slice;
    };
    await expect(read()).rejects.toThrow(/more than the 1 run/);
  });
});
