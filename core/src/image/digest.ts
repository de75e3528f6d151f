import { createHash, type Hash } from 'node:crypto';

export const DIGEST_ALGORITHM = 'sha256';

export function newDigest(): Hash {
  return createHash(DIGEST_ALGORITHM);
}

export function digestString(hash: Hash): string {
  return `${DIGEST_ALGORITHM}:${hash.digest('hex')}`;
}

export function digestOf(data: Uint8Array | string): string {
  return digestString(newDigest().update(data));
}
