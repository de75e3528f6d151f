import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { ImageError } from '../errors.js';

type XxHash = typeof import('@node-rs/xxhash');
const requireHere = createRequire(import.meta.url);
let xxhash: XxHash | undefined;
/** @node-rs/xxhash, loaded at its first use: its addon costs a command that hashes no blob (types, inspect) some ms. */
const xxh3 = (): XxHash['xxh3'] => (xxhash ??= requireHere('@node-rs/xxhash') as XxHash).xxh3;

/**
 * sha256 for the manifest, records and small blobs; xxh3-64 for the other blobs, which can be
 * gigabytes of memory: at ~16 GB/s it lets a checkpoint run near the speed of the copy itself.
 * Both catch truncation and flipped bits; neither is meant to stop someone who can rewrite the
 * manifest too.
 */
export type DigestAlgorithm = 'sha256' | 'xxh3-64';

/**
 * Blobs up to this size get sha256: node hashes 4 MiB in about 2.5 ms, where loading xxhash's
 * addon takes a command 2.5-4 ms, so that a checkpoint and a restore of a small process load none.
 */
const SMALL_BLOB = 4 << 20;

/**
 * The digest of a blob, chosen by its size once it is all written, so that the same bytes get the
 * same digest however they were written (whole, streamed, compressed; cr inspect diff compares
 * digests): sha256 up to SMALL_BLOB, xxh3-64 beyond. Until it passes SMALL_BLOB, a copy of what
 * was hashed is kept, to be hashed again with xxh3-64 if it does.
 */
export function newBlobDigest(): StreamingDigest {
  const small = newDigest('sha256');
  let kept: Buffer[] = [];
  let keptBytes = 0;
  let large: StreamingDigest | undefined;
  return {
    update(data) {
      if (large) return large.update(data);
      if (keptBytes + data.byteLength <= SMALL_BLOB) {
        small.update(data);
        kept.push(Buffer.from(data));
        keptBytes += data.byteLength;
        return;
      }
      large = newDigest('xxh3-64');
      for (const piece of kept) large.update(piece);
      kept = [];
      large.update(data);
    },
    digest: () => (large ?? small).digest(),
  };
}

export interface StreamingDigest {
  update(data: Uint8Array): void;
  /** "<algorithm>:<hex>", as the manifest stores it. */
  digest(): string;
}

export function newDigest(algorithm: DigestAlgorithm = 'sha256'): StreamingDigest {
  if (algorithm === 'sha256') {
    const hash = createHash('sha256');
    return { update: (data) => void hash.update(data), digest: () => `sha256:${hash.digest('hex')}` };
  }
  const hash = xxh3().Xxh3.withSeed(0n);
  return {
    update: (data) => void hash.update(Buffer.from(data.buffer, data.byteOffset, data.byteLength)),
    digest: () => `xxh3-64:${hash.digest().toString(16).padStart(16, '0')}`,
  };
}

export function digestOf(data: Uint8Array | string): string {
  const digest = newDigest('sha256');
  digest.update(typeof data === 'string' ? Buffer.from(data) : data);
  return digest.digest();
}

/** The algorithm a stored digest was made with. */
export function algorithmOf(digest: string): DigestAlgorithm {
  const algorithm = digest.slice(0, digest.indexOf(':'));
  if (algorithm === 'sha256' || algorithm === 'xxh3-64') return algorithm;
  throw new ImageError(`unknown digest algorithm in "${digest}"`);
}
