import { createRequire } from 'node:module';
import type { Compression } from '@cr/schemas';

/**
 * Compresses and decompresses one frame: the compression of one slice (at most FRAME_SIZE
 * bytes) of a blob. Frames are independent, so a blob is compressed and read back slice by slice
 * in constant memory, and the frames one after the other are what `zstd -d` or `lz4 -d` reads.
 *
 * zstd comes from zstd-napi (Node 20's zlib has no zstd): the zstd library itself through
 * Node-API, maintained, with the zstd sources in the package, so it installs where no prebuilt
 * binary can be fetched (a C compiler builds it). LZ4 comes from lz4-napi (lz4_flex through
 * napi-rs), whose prebuilt binary comes as a platform package from the npm registry. Both are
 * loaded only when an image is compressed, so that no other command pays for them.
 */
export interface Codec {
  compress(data: Uint8Array): Promise<Buffer>;
  decompress(frame: Uint8Array): Promise<Buffer>;
  /** For readers that cannot wait (cr inspect's checks). */
  decompressSync(frame: Uint8Array): Buffer;
}

/** The data each frame holds: the size of the chunks blobs are streamed in. */
export const FRAME_SIZE = 8 << 20;

const require = createRequire(import.meta.url);

interface ZstdNapi {
  compress(data: Uint8Array): Buffer;
  decompress(data: Uint8Array): Buffer;
}
interface Lz4Napi {
  compressFrame(data: Uint8Array): Promise<Buffer>;
  decompressFrame(data: Uint8Array): Promise<Buffer>;
  decompressFrameSync(data: Uint8Array): Buffer;
}

const codecs: Record<Compression, () => Codec> = {
  zstd: () => {
    const zstd = require('zstd-napi') as ZstdNapi;
    // zstd's default level (3): about as fast as lz4 on data that does not compress, far smaller on data that does.
    return { compress: async (data) => zstd.compress(data), decompress: async (frame) => zstd.decompress(frame), decompressSync: (frame) => zstd.decompress(frame) };
  },
  lz4: () => {
    const lz4 = require('lz4-napi') as Lz4Napi;
    // The async calls run on libuv's pool, beside the JS thread's hashing and I/O.
    return {
      compress: (data) => lz4.compressFrame(data),
      decompress: (frame) => lz4.decompressFrame(frame),
      decompressSync: (frame) => lz4.decompressFrameSync(Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength)),
    };
  },
};

const loaded = new Map<Compression, Codec>();

export function codecFor(compression: Compression): Codec {
  let codec = loaded.get(compression);
  if (!codec) {
    codec = codecs[compression]();
    loaded.set(compression, codec);
  }
  return codec;
}
