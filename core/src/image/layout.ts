/** Where each part of an image lives inside the image directory. */
export const MANIFEST_FILE = 'manifest.json';
/** Digest of manifest.json; it is written last, so an image without it never reads as complete. */
export const MANIFEST_DIGEST_FILE = 'manifest.sha256';

const safe = (part: string) => encodeURIComponent(part);

export function recordPath(type: string, id: string): string {
  return `records/${safe(type)}/${safe(id)}.json`;
}

export function blobPath(type: string, id: string, name: string): string {
  return `blobs/${safe(type)}/${safe(id)}/${safe(name)}.bin`;
}
