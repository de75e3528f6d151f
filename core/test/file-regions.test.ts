import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { WRITE_PIECE, readRegions, writePieces, writeRegions } from '../src/io/file-regions.js';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'cr-file-regions-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** Bytes that differ from position to position, so that a piece written in the wrong place shows. */
const pattern = (length: number, seed = 0) => Buffer.from(Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff));

async function* chunks(data: Buffer, size: number): AsyncGenerator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, Math.min(at + size, data.length));
}

describe('writePieces', () => {
  it('writes data of several pieces at the file offset, then at a position, and hands on each piece once written', () => {
    const path = join(dir, 'f');
    const fd = openSync(path, 'w+');
    const data = pattern(2 * WRITE_PIECE + 100);
    const seen: number[] = [];
    try {
      writePieces(fd, data, undefined, path, (piece) => seen.push(piece.byteLength));
      writePieces(fd, pattern(10, 3), 5, path);
    } finally {
      closeSync(fd);
    }
    expect(seen).toEqual([WRITE_PIECE, WRITE_PIECE, 100]);
    const expected = Buffer.from(data);
    pattern(10, 3).copy(expected, 5);
    expect(readFileSync(path).equals(expected)).toBe(true);
  });
});

describe('writeRegions', () => {
  it('puts chunks of any size into regions larger and smaller than a piece, and readRegions reads them back', async () => {
    const path = join(dir, 'f');
    const regions = [
      { position: 3 * WRITE_PIECE + 17, length: WRITE_PIECE + 5 },
      { position: 0, length: 9 },
      { position: WRITE_PIECE, length: 2 * WRITE_PIECE },
    ];
    const total = regions.reduce((sum, r) => sum + r.length, 0);
    const data = pattern(total, 1);
    const fd = openSync(path, 'w+');
    try {
      await writeRegions(fd, regions, chunks(data, 100_000), path);
      const back: Buffer[] = [];
      for await (const chunk of readRegions(fd, regions, path, 70_000)) back.push(Buffer.from(chunk));
      expect(Buffer.concat(back).equals(data)).toBe(true);
    } finally {
      closeSync(fd);
    }
  });

  it('refuses a source longer or shorter than the regions, naming what it writes', async () => {
    const path = join(dir, 'f');
    const fd = openSync(path, 'w+');
    try {
      await expect(writeRegions(fd, [{ position: 0, length: 10 }], chunks(pattern(11), 4), 'the contents')).rejects.toThrow(/the contents: 1 bytes more than the 10 expected/);
      await expect(writeRegions(fd, [{ position: 0, length: 10 }], chunks(pattern(9), 4), 'the contents')).rejects.toThrow(/the contents: 9 bytes where 10 were expected/);
    } finally {
      closeSync(fd);
    }
  });
});
