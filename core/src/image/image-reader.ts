import { O_NOFOLLOW, O_NONBLOCK, O_RDONLY } from 'node:constants';
import { closeSync, existsSync, fstatSync, openSync, readlinkSync, readSync, realpathSync } from 'node:fs';
import { readRegions } from '../io/file-regions.js';
import { join, resolve, sep } from 'node:path';
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
import type { StoredBlob } from '../plugin/contract.js';
import { describeZodError } from '../zod-issues.js';
import { codecFor } from './compression.js';
import { algorithmOf, digestOf, newDigest } from './digest.js';
import { MANIFEST_DIGEST_FILE, MANIFEST_FILE } from './layout.js';
import { manifestProblem } from './manifest-check.js';
import { ONE_SHOT } from '../one-shot-parse.js';

/** Far above the manifest of any real checkpoint (a few KiB per object). */
const MAX_MANIFEST_SIZE = 256 << 20;

/**
 * Reads an image and refuses anything it cannot trust: a missing or altered manifest, a newer
 * format, a manifest that does not hang together (manifestProblem), a file name leading out of
 * the image, a file that is not a regular file or whose size or digest differs from the
 * manifest, a record that fails its schema or has another version than the manifest says.
 * Every error is one line naming the image file (and the record) concerned.
 */
export class ImageReader {
  private constructor(
    readonly imageDir: string,
    readonly manifest: Manifest,
    /** imageDir with every symbolic link resolved: where every file read must lie. */
    private readonly realDir: string,
  ) {}

  static open(dir: string): ImageReader {
    const imageDir = resolve(dir);
    if (!existsSync(imageDir)) throw new ImageError(`no image at ${dir}: the directory does not exist`);
    const realDir = realpathSync(imageDir);
    const digestPath = join(imageDir, MANIFEST_DIGEST_FILE);
    const manifestPath = join(imageDir, MANIFEST_FILE);
    if (!existsSync(manifestPath) || !existsSync(digestPath)) {
      throw new ImageError(`${dir} is not a complete cr image: ${existsSync(manifestPath) ? MANIFEST_DIGEST_FILE : MANIFEST_FILE} is missing`);
    }
    const text = readWhole(manifestPath, realDir, atMost(manifestPath, MAX_MANIFEST_SIZE));
    const expected = readWhole(digestPath, realDir, atMost(digestPath, 1024)).toString('utf8').trim();
    if (digestOf(text) !== expected) {
      throw new ImageError(`${manifestPath} is corrupt: its digest does not match ${MANIFEST_DIGEST_FILE}; the image cannot be trusted`);
    }
    let data: unknown;
    try {
      data = JSON.parse(text.toString('utf8'));
    } catch (err) {
      throw new ImageError(`${manifestPath} is not valid JSON: ${(err as Error).message}`);
    }
    const header = manifestHeaderSchema.safeParse(data, ONE_SHOT);
    if (!header.success) throw new ImageError(`${manifestPath} is not a cr image manifest: ${describeZodError(header.error, data).join('; ')}`);
    if (header.data.formatVersion > IMAGE_FORMAT_VERSION) {
      throw new ImageError(
        `${dir} has image format version ${header.data.formatVersion} (written by cr ${header.data.tool?.version ?? 'unknown'}); ` +
          `this cr reads format ${IMAGE_FORMAT_VERSION} and older: upgrade cr to restore it`,
      );
    }
    const parsed = manifestSchema.safeParse(data, ONE_SHOT);
    if (!parsed.success) throw new ImageError(`${manifestPath} is malformed: ${describeZodError(parsed.error, data).join('; ')}`);
    const problem = manifestProblem(parsed.data);
    if (problem) throw new ImageError(`${manifestPath} is inconsistent: ${problem}`);
    return new ImageReader(imageDir, parsed.data, realDir);
  }

  /** Reads a small file whole, after checking its size and digest against the manifest. */
  readFile(rel: string): Buffer {
    const entry = this.entry(rel);
    const path = join(this.imageDir, rel);
    const data = readWhole(path, this.realDir, (size) => checkSize(path, size, entry));
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
    const envelope = recordFileSchema.safeParse(data, ONE_SHOT);
    if (!envelope.success) throw new ImageError(`${where} is malformed: ${describeZodError(envelope.error, data).join('; ')}`);
    if (envelope.data.type !== object.type || envelope.data.id !== object.id) {
      throw new ImageError(`${where} holds ${envelope.data.type}:${envelope.data.id} instead`);
    }
    const declared = this.manifest.plugins.find((p) => p.type === object.type)?.version;
    if (envelope.data.version !== declared) {
      throw new ImageError(`${where} has record version ${envelope.data.version}, but the manifest says ${object.type} records are version ${declared}`);
    }
    const record = schema.safeParse(envelope.data.record, ONE_SHOT);
    if (!record.success) {
      throw new ImageError(`${where} fails its schema: ${describeZodError(record.error, envelope.data.record).join('; ')}`);
    }
    return { version: envelope.data.version, record: record.data };
  }

  blobSize(rel: string): number {
    return this.entry(rel).size;
  }

  /**
   * Checks that every file the manifest lists is a regular file inside the image with the size
   * the manifest says, without reading it: cheap enough to do before anything is restored, and
   * what lets plugins trust blob sizes. Digests are checked as the files are read. `readNext`
   * are files the caller reads whole right after (the records), which readFile checks as it
   * opens them: a restore of 100 processes opened some 300 records twice.
   */
  checkFiles(readNext: ReadonlySet<string> = new Set()): void {
    for (const [rel, entry] of Object.entries(this.manifest.files)) {
      if (readNext.has(rel)) continue;
      const { fd, path, size } = openInside(join(this.imageDir, rel), this.realDir);
      closeSync(fd);
      checkStoredSize(path, size, entry);
    }
  }

  /** Reads a blob straight into `target` (e.g. attached shared memory), verifying it on the way. */
  async readBlobInto(rel: string, target: Uint8Array): Promise<void> {
    const entry = this.entry(rel);
    const path = join(this.imageDir, rel);
    if (target.byteLength !== entry.size) throw new ImageError(`${path} holds ${entry.size} bytes but ${target.byteLength} were expected`);
    let offset = 0;
    for await (const chunk of this.readBlobChunks(rel)) {
      target.set(chunk, offset);
      offset += chunk.byteLength;
    }
  }

  /**
   * Streams a blob in chunks, for data too large to hold at once (process memory), decompressing
   * what is stored compressed. The size is checked before the first chunk and the digest after
   * the last: a consumer must not let what it built from the chunks take effect before the
   * iteration has ended without an error.
   */
  async *readBlobChunks(rel: string): AsyncGenerator<Uint8Array> {
    const entry = this.entry(rel);
    const path = join(this.imageDir, rel);
    const { fd, size } = openInside(path, this.realDir);
    try {
      checkStoredSize(path, size, entry);
      yield* verifiedData(fd, path, entry);
    } finally {
      closeSync(fd);
    }
  }

  /**
   * A blob stored as it is (not compressed), open for someone other than cr to read in place (a
   * restored process reading its own pages), checked as readBlobChunks checks it before the first
   * chunk; undefined when the blob is stored compressed.
   */
  openStoredBlob(rel: string): StoredBlob | undefined {
    const entry = this.entry(rel);
    if (entry.compression) return undefined;
    const path = join(this.imageDir, rel);
    const { fd, size } = openInside(path, this.realDir);
    try {
      checkStoredSize(path, size, entry);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    let open = true;
    return {
      fd,
      path,
      size: entry.size,
      verified: () => verifiedData(fd, path, entry),
      close: () => {
        if (open) closeSync(fd);
        open = false;
      },
    };
  }

  /** Checks every file of the image; returns one line per problem (empty when all is well). */
  async verifyAll(): Promise<string[]> {
    const problems: string[] = [];
    for (const [rel, entry] of Object.entries(this.manifest.files)) {
      const path = join(this.imageDir, rel);
      try {
        const { fd, size: stored } = openInside(path, this.realDir);
        const hash = newDigest(algorithmOf(entry.digest));
        let size = 0;
        try {
          checkStoredSize(path, stored, entry);
          for await (const chunk of dataOf(fd, path, entry)) {
            hash.update(chunk);
            size += chunk.byteLength;
          }
        } finally {
          closeSync(fd);
        }
        checkSize(path, size, entry);
        if (hash.digest() !== entry.digest) problems.push(`${path} is corrupt: its digest does not match the manifest`);
      } catch (err) {
        problems.push(err instanceof ImageError ? err.message : `${path} is unreadable: ${(err as Error).message}`);
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

/**
 * Opens a file of the image for reading, refusing what is not a regular file inside the image: a
 * symbolic link (the file's own, or one of its directories'), a FIFO, a device. Non-blocking, so
 * that a FIFO put in the image cannot make cr wait.
 */
function openInside(path: string, realDir: string): { fd: number; path: string; size: number } {
  let fd: number;
  try {
    fd = openSync(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ImageError(`${path} is missing from the image`);
    if (code === 'ELOOP') throw new ImageError(`${path} is a symbolic link; the files of an image must be regular files inside it`);
    throw new ImageError(`${path} cannot be opened (${code})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ImageError(`${path} is not a regular file; the files of an image must be regular files inside it`);
    if (!readlinkSync(`/proc/self/fd/${fd}`).startsWith(realDir + sep)) {
      throw new ImageError(`${path} lies outside the image (a directory on its way is a symbolic link); the files of an image must be regular files inside it`);
    }
    return { fd, path, size: st.size };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Reads a file of the image whole, once `check` has accepted its size. */
function readWhole(path: string, realDir: string, check: (size: number) => void): Buffer {
  const { fd, size } = openInside(path, realDir);
  try {
    check(size);
    const data = Buffer.allocUnsafe(size);
    let offset = 0;
    for (let n; offset < size && (n = readSync(fd, data, offset, size - offset, offset)) > 0; offset += n);
    return data.subarray(0, offset);
  } finally {
    closeSync(fd);
  }
}

/** The manifest and its digest file are small; a huge one is not a manifest. */
function atMost(path: string, limit: number): (size: number) => void {
  return (size) => {
    if (size > limit) throw new ImageError(`${path} is ${size} bytes, more than a cr image's ${limit}-byte limit for it; it is not a manifest cr wrote`);
  };
}

/** Checks the size a file takes in the image: its data's, or the sum of its frames' if compressed. */
function checkStoredSize(path: string, size: number, entry: FileEntry): void {
  if (!entry.compression) return checkSize(path, size, entry);
  const expected = entry.compression.size;
  if (size < expected) throw new ImageError(`${path} is truncated: ${size} of ${expected} bytes (${entry.compression.algorithm}-compressed)`);
  if (size > expected) throw new ImageError(`${path} is longer than the manifest says: ${size} bytes, expected ${expected} (${entry.compression.algorithm}-compressed)`);
}

/** The data of an open image file, in chunks (see dataOf), and its digest checked after the last. */
async function* verifiedData(fd: number, path: string, entry: FileEntry): AsyncGenerator<Uint8Array> {
  const hash = newDigest(algorithmOf(entry.digest));
  for await (const chunk of dataOf(fd, path, entry)) {
    hash.update(chunk);
    yield chunk;
  }
  if (hash.digest() !== entry.digest) throw new ImageError(`${path} is corrupt: its digest does not match the manifest`);
}

/** The data of an open image file, in chunks: as stored, or each frame decompressed. */
async function* dataOf(fd: number, path: string, entry: FileEntry): AsyncGenerator<Uint8Array> {
  const compression = entry.compression;
  if (!compression) {
    yield* readRegions(fd, [{ position: 0, length: entry.size }], path);
    return;
  }
  const codec = codecFor(compression.algorithm);
  const largest = compression.frames.reduce((max, n) => Math.max(max, n), 0);
  let index = 0;
  for await (const frame of readRegions(fd, frameRegions(compression.frames), path, largest)) {
    let data: Buffer;
    try {
      data = await codec.decompress(frame);
    } catch (err) {
      throw undecodable(path, entry, index, err);
    }
    checkFrame(path, entry, index++, data);
    yield data;
  }
}

function frameRegions(frames: readonly number[]): { position: number; length: number }[] {
  let position = 0;
  return frames.map((length) => {
    const region = { position, length };
    position += length;
    return region;
  });
}

function undecodable(path: string, entry: FileEntry, index: number, err: unknown): ImageError {
  const { algorithm, frames } = entry.compression!;
  return new ImageError(`${path} is corrupt: frame ${index + 1} of ${frames.length} is not valid ${algorithm} data (${(err as Error).message})`);
}

/** Every frame holds frameSize bytes of data, but the last, which holds the rest. */
function checkFrame(path: string, entry: FileEntry, index: number, data: Uint8Array): void {
  const { frameSize, frames } = entry.compression!;
  const expected = index < frames.length - 1 ? frameSize : entry.size - frameSize * (frames.length - 1);
  if (data.byteLength !== expected) throw new ImageError(`${path} is corrupt: frame ${index + 1} of ${frames.length} holds ${data.byteLength} bytes of data, not ${expected}`);
}

function checkSize(path: string, size: number, entry: FileEntry): void {
  if (size < entry.size) throw new ImageError(`${path} is truncated: ${size} of ${entry.size} bytes`);
  if (size > entry.size) throw new ImageError(`${path} is longer than the manifest says: ${size} bytes, expected ${entry.size}`);
}
