import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { readRegions } from '../io/file-regions.js';
import { join, resolve } from 'node:path';
import {
  IMAGE_FORMAT_VERSION,
  manifestHeaderSchema,
  manifestSchema,
  recordFileSchema,
  type FileEntry,
  type Manifest,
  type ObjectEntry,
} from '@cr/schemas';
import type { ZodType } from 'zod';
import { ImageError } from '../errors.js';
import { describeZodError } from '../zod-issues.js';
import { algorithmOf, digestOf, newDigest } from './digest.js';
import { MANIFEST_DIGEST_FILE, MANIFEST_FILE } from './layout.js';

const CHUNK = 8 << 20;

/**
 * Reads an image and refuses anything it cannot trust: a missing or altered manifest, a newer
 * format, a file whose size or digest differs from the manifest, a record that fails its schema.
 * Every error names the image file (and the record) concerned.
 */
export class ImageReader {
  private constructor(
    readonly imageDir: string,
    readonly manifest: Manifest,
  ) {}

  static open(dir: string): ImageReader {
    const imageDir = resolve(dir);
    if (!existsSync(imageDir)) throw new ImageError(`no image at ${dir}: the directory does not exist`);
    const digestPath = join(imageDir, MANIFEST_DIGEST_FILE);
    const manifestPath = join(imageDir, MANIFEST_FILE);
    if (!existsSync(manifestPath) || !existsSync(digestPath)) {
      throw new ImageError(`${dir} is not a complete cr image: ${existsSync(manifestPath) ? MANIFEST_DIGEST_FILE : MANIFEST_FILE} is missing`);
    }
    const text = readFileSync(manifestPath);
    const expected = readFileSync(digestPath, 'utf8').trim();
    if (digestOf(text) !== expected) {
      throw new ImageError(`${manifestPath} is corrupt: its digest does not match ${MANIFEST_DIGEST_FILE}; the image cannot be trusted`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text.toString('utf8'));
    } catch (err) {
      throw new ImageError(`${manifestPath} is not valid JSON: ${(err as Error).message}`);
    }
    const header = manifestHeaderSchema.safeParse(data);
    if (!header.success) throw new ImageError(`${manifestPath} is not a cr image manifest:\n  ${describeZodError(header.error, data).join('\n  ')}`);
    if (header.data.formatVersion > IMAGE_FORMAT_VERSION) {
      throw new ImageError(
        `${dir} has image format version ${header.data.formatVersion} (written by cr ${header.data.tool?.version ?? 'unknown'}); ` +
          `this cr reads format ${IMAGE_FORMAT_VERSION} and older: upgrade cr to restore it`,
      );
    }
    const parsed = manifestSchema.safeParse(data);
    if (!parsed.success) throw new ImageError(`${manifestPath} is malformed:\n  ${describeZodError(parsed.error, data).join('\n  ')}`);
    return new ImageReader(imageDir, parsed.data);
  }

  /** Reads a small file whole, after checking its size and digest against the manifest. */
  readFile(rel: string): Buffer {
    const entry = this.entry(rel);
    const path = join(this.imageDir, rel);
    let data: Buffer;
    try {
      data = readFileSync(path);
    } catch {
      throw new ImageError(`${path} is missing from the image`);
    }
    checkSize(path, data.byteLength, entry);
    const digest = newDigest(algorithmOf(entry.digest));
    digest.update(data);
    if (digest.digest() !== entry.digest) throw new ImageError(`${path} is corrupt: its digest does not match the manifest`);
    return data;
  }

  /** The record of `object`, validated by the envelope schema and then by the plugin's schema. */
  readRecord<R>(object: ObjectEntry, schema: ZodType<R>): { version: number; record: R } {
    if (!object.record) throw new ImageError(`object ${object.key} has no record in this image (policy decision: ${object.policy.decision})`);
    const path = join(this.imageDir, object.record);
    const where = `record ${object.key} in ${path}`;
    let data: unknown;
    try {
      data = JSON.parse(this.readFile(object.record).toString('utf8'));
    } catch (err) {
      if (err instanceof ImageError) throw err;
      throw new ImageError(`${where} is not valid JSON: ${(err as Error).message}`);
    }
    const envelope = recordFileSchema.safeParse(data);
    if (!envelope.success) throw new ImageError(`${where} is malformed:\n  ${describeZodError(envelope.error, data).join('\n  ')}`);
    if (envelope.data.type !== object.type || envelope.data.id !== object.id) {
      throw new ImageError(`${where} holds ${envelope.data.type}:${envelope.data.id} instead`);
    }
    const record = schema.safeParse(envelope.data.record);
    if (!record.success) {
      throw new ImageError(`${where} fails its schema:\n  ${describeZodError(record.error, envelope.data.record).join('\n  ')}`);
    }
    return { version: envelope.data.version, record: record.data };
  }

  blobSize(rel: string): number {
    return this.entry(rel).size;
  }

  /** Reads a blob straight into `target` (e.g. attached shared memory), verifying it on the way. */
  readBlobInto(rel: string, target: Uint8Array): void {
    const entry = this.entry(rel);
    const path = join(this.imageDir, rel);
    if (target.byteLength !== entry.size) throw new ImageError(`${path} holds ${entry.size} bytes but ${target.byteLength} were expected`);
    const fd = openSync(path, 'r');
    const hash = newDigest(algorithmOf(entry.digest));
    try {
      let offset = 0;
      while (offset < entry.size) {
        const n = readSync(fd, target, offset, Math.min(CHUNK, entry.size - offset), offset);
        if (n === 0) break;
        hash.update(target.subarray(offset, offset + n));
        offset += n;
      }
      checkSize(path, offset === entry.size ? statSync(path).size : offset, entry);
    } finally {
      closeSync(fd);
    }
    if (hash.digest() !== entry.digest) throw new ImageError(`${path} is corrupt: its digest does not match the manifest`);
  }

  /**
   * Streams a blob in chunks, for data too large to hold at once (process memory). The size is
   * checked before the first chunk and the digest after the last: a consumer must not let what it
   * built from the chunks take effect before the iteration has ended without an error.
   */
  async *readBlobChunks(rel: string): AsyncGenerator<Uint8Array> {
    const entry = this.entry(rel);
    const path = join(this.imageDir, rel);
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch {
      throw new ImageError(`${path} is missing from the image`);
    }
    try {
      checkSize(path, statSync(path).size, entry);
      const hash = newDigest(algorithmOf(entry.digest));
      for await (const chunk of readRegions(fd, [{ position: 0, length: entry.size }], path)) {
        hash.update(chunk);
        yield chunk;
      }
      if (hash.digest() !== entry.digest) throw new ImageError(`${path} is corrupt: its digest does not match the manifest`);
    } finally {
      closeSync(fd);
    }
  }

  /** Checks every file of the image; returns one line per problem (empty when all is well). */
  verifyAll(): string[] {
    const problems: string[] = [];
    for (const [rel, entry] of Object.entries(this.manifest.files)) {
      const path = join(this.imageDir, rel);
      try {
        const fd = openSync(path, 'r');
        const hash = newDigest(algorithmOf(entry.digest));
        const buf = Buffer.allocUnsafe(CHUNK);
        let size = 0;
        try {
          for (let n; (n = readSync(fd, buf, 0, CHUNK, null)) > 0; size += n) hash.update(buf.subarray(0, n));
        } finally {
          closeSync(fd);
        }
        checkSize(path, size, entry);
        if (hash.digest() !== entry.digest) problems.push(`${path} is corrupt: its digest does not match the manifest`);
      } catch (err) {
        problems.push(err instanceof ImageError ? err.message : `${path} is missing or unreadable`);
      }
    }
    return problems;
  }

  private entry(rel: string): FileEntry {
    const entry = this.manifest.files[rel];
    if (!entry) throw new ImageError(`${join(this.imageDir, rel)} is not listed in the manifest`);
    return entry;
  }
}

function checkSize(path: string, size: number, entry: FileEntry): void {
  if (size < entry.size) throw new ImageError(`${path} is truncated: ${size} of ${entry.size} bytes`);
  if (size > entry.size) throw new ImageError(`${path} is longer than the manifest says: ${size} bytes, expected ${entry.size}`);
}
