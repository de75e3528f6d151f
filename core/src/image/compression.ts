import { createRequire } from 'node:module';
import type { Compression } from '@cr/schemas';

/**
 * Compresses and decompresses one frame: the compression of one slice (at most FRAME_SIZE
 * bytes) of a blob. Frames are independent, so a blob is compressed and read back slice by slice
 * in constant memory, and the frames one after the other are what `zstd -d` or `lz4 -d` reads.
 *
 * zstd comes from @mongodb-js/zstd 1.x (Node 20's zlib has no zstd): the zstd library through
 * napi-rs, by MongoDB; LZ4 from lz4-napi (lz4_flex through napi-rs). Both ship prebuilt binaries
 * as platform packages of the npm registry, as @node-rs/xxhash does: no compiler and no
 * download at install (the 2.x line of @mongodb-js/zstd fetches its binary from GitHub at
 * install, or builds it). Both run on libuv's pool, beside the JS thread's hashing and I/O, and
 * are loaded only when an image is compressed, so that no other command pays for them.
 */
export interface Codec {
  compress(data: Uint8Array): Promise<Buffer>;
  decompress(frame: Uint8Array): Promise<Buffer>;
}

/** The data each frame holds: the size of the chunks blobs are streamed in. */
export const FRAME_SIZE = 8 << 20;

const require = createRequire(import.meta.url);

interface MongodbZstd {
  compress(data: Uint8Array, level: number): Promise<Buffer>;
  decompress(data: Uint8Array): Promise<Buffer>;
}
interface Lz4Napi {
  compressFrame(data: Uint8Array): Promise<Buffer>;
  decompressFrame(data: Uint8Array): Promise<Buffer>;
}

/** zstd's default level: about as fast as lz4 on data that does not compress, far smaller on data that does. */
const ZSTD_LEVEL = 3;

const codecs: Record<Compression, () => Codec> = {
  zstd: () => {
    const zstd = require('@mongodb-js/zstd') as MongodbZstd;
    return { compress: (data) => zstd.compress(asBuffer(data), ZSTD_LEVEL), decompress: (frame) => zstd.decompress(asBuffer(frame)) };
  },
  lz4: () => {
    const lz4 = require('lz4-napi') as Lz4Napi;
    return { compress: (data) => lz4.compressFrame(data), decompress: (frame) => lz4.decompressFrame(frame) };
  },
};

/** The same bytes as a Buffer, which the napi-rs bindings take. */
function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}

const loaded = new Map<Compression, Codec>();

export function codecFor(compression: Compression): Codec {
  let codec = loaded.get(compression);
  if (!codec) {
    codec = codecs[compression]();
    loaded.set(compression, codec);
  }
  return codec;
}
