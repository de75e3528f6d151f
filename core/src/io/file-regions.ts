import { read, writeSync } from 'node:fs';
import { promisify } from 'node:util';
import { CrError } from '../errors.js';

const readAsync = promisify(read);

/** A byte range of a file (or of /proc/PID/mem, where the position is an address). */
export interface FileRegion {
  position: number;
  length: number;
}

export const CHUNK_SIZE = 8 << 20;

/**
 * The most cr asks one write(2) to a file to take. ext4 (since 6.16) gives a write page-cache
 * folios as large as the write, up to 2 MiB, and on a VM whose balloon reports free memory to the
 * host (virtio-balloon free page reporting, of blocks from 128 KiB up on the VMs cr is tested on)
 * such folios are mostly made of memory the host took back and must now back again, page by page.
 * Measured there (Linux 6.18), 1 GiB written by node right after as much was freed: 8 MiB writes
 * took 1.0-2.1 s, 128 KiB writes 0.44-0.68 s (64 KiB: 0.53-0.77 s, 1 MiB: 0.49-1.67 s); written
 * through libuv's pool a piece at a time, 64 KiB took 1.2-1.7 s. So the JS thread writes, piece by
 * piece, and a piece is small (see writePieces).
 */
export const WRITE_PIECE = 128 << 10;

/**
 * Writes `data` to an open file a WRITE_PIECE at a time, on the JS thread, at `position` (or at
 * the file's offset), handing each piece to `each` once it is written, while it is still in the
 * CPU's cache. A write that takes nothing is an error naming `what`.
 */
export function writePieces(fd: number, data: Uint8Array, position: number | undefined, what: string, each?: (piece: Uint8Array) => void): void {
  for (let at = 0; at < data.byteLength; at += WRITE_PIECE) {
    const piece = data.subarray(at, Math.min(at + WRITE_PIECE, data.byteLength));
    for (let done = 0; done < piece.byteLength; ) {
      const n = writeSync(fd, piece, done, piece.byteLength - done, position === undefined ? null : position + at + done);
      if (n === 0) throw new CrError(`${what}: only ${at + done} of ${data.byteLength} bytes writable${position === undefined ? '' : ` at position ${position}`}`);
      done += n;
    }
    each?.(piece);
  }
}

/**
 * Yields the chunks `fill` produces, one per entry of `sizes`, in order. Two buffers alternate:
 * the next chunk is filled (on libuv's pool) while the consumer works on the current one, and a
 * buffer is refilled only once the consumer asked for the chunk after the one it held. Memory use
 * stays at two chunks whatever the total size.
 */
export async function* readAhead(sizes: readonly number[], fill: (index: number, target: Buffer) => Promise<Uint8Array>): AsyncGenerator<Uint8Array> {
  if (sizes.length === 0) return;
  const largest = sizes.reduce((max, size) => Math.max(max, size), 0);
  const buffers = [Buffer.allocUnsafe(largest), Buffer.allocUnsafe(largest)];
  const start = (i: number) => {
    const filled = fill(i, buffers[i % 2]!.subarray(0, sizes[i]!));
    // A read ahead that fails while the consumer is busy with the chunk before must not end the
    // process as an unhandled rejection: it fails the `await` that comes to it.
    filled.catch(() => undefined);
    return filled;
  };
  let pending: Promise<Uint8Array> | undefined = start(0);
  try {
    for (let i = 0; i < sizes.length; i++) {
      const chunk = await pending!;
      pending = i + 1 < sizes.length ? start(i + 1) : undefined;
      yield chunk;
    }
  } finally {
    // Left early (the consumer failed): the fill in flight must end before the caller closes
    // what it reads from, or it could land on another file that reuses the number.
    await pending?.catch(() => undefined);
  }
}

/**
 * Streams the bytes of `regions` of an open file, in order, as chunks of at most `chunkSize`
 * bytes read ahead (see readAhead). A short read is an error naming `what`.
 */
export function readRegions(fd: number, regions: readonly FileRegion[], what: string, chunkSize = CHUNK_SIZE): AsyncGenerator<Uint8Array> {
  const pieces = splitRegions(regions, chunkSize);
  return readAhead(
    pieces.map((p) => p.length),
    (i, target) => readFully(fd, target, pieces[i]!, what),
  );
}

/**
 * Writes the bytes of `source` to `regions` of an open file, in order: the inverse of
 * readRegions. The writes run on the JS thread (see writePieces) while the source reads its next
 * chunk; the source must deliver exactly the regions' total length.
 */
export async function writeRegions(fd: number, regions: readonly FileRegion[], source: AsyncIterable<Uint8Array>, what: string): Promise<void> {
  let index = 0;
  let within = 0;
  const total = regions.reduce((sum, r) => sum + r.length, 0);
  let written = 0;
  for await (const chunk of source) {
    let offset = 0;
    while (offset < chunk.byteLength) {
      const region = regions[index];
      if (!region) throw new CrError(`${what}: ${chunk.byteLength - offset} bytes more than the ${total} expected`);
      const n = Math.min(region.length - within, chunk.byteLength - offset);
      writePieces(fd, chunk.subarray(offset, offset + n), region.position + within, what);
      offset += n;
      within += n;
      written += n;
      if (within === region.length) {
        index++;
        within = 0;
      }
    }
  }
  if (written !== total) throw new CrError(`${what}: ${written} bytes where ${total} were expected`);
}

function splitRegions(regions: readonly FileRegion[], chunkSize: number): FileRegion[] {
  const pieces: FileRegion[] = [];
  for (const r of regions) {
    for (let off = 0; off < r.length; off += chunkSize) pieces.push({ position: r.position + off, length: Math.min(chunkSize, r.length - off) });
  }
  return pieces;
}

/** Reads `piece` of an open file into `buffer` on libuv's pool; a short read is an error naming `what`. */
export async function readFully(fd: number, buffer: Buffer, piece: FileRegion, what: string): Promise<Buffer> {
  let done = 0;
  while (done < piece.length) {
    const { bytesRead } = await readAsync(fd, buffer, done, piece.length - done, piece.position + done);
    if (bytesRead === 0) throw new CrError(`${what}: only ${done} of ${piece.length} bytes readable at position ${piece.position}`);
    done += bytesRead;
  }
  return buffer.subarray(0, piece.length);
}

