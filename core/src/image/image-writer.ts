import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, ftruncateSync, mkdirSync, openSync, renameSync, rmdirSync, rmSync, statfsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { COMPRESSED_IMAGE_FORMAT_VERSION, INCREMENTAL_IMAGE_FORMAT_VERSION, PLAIN_IMAGE_FORMAT_VERSION, type Compression, type FileEntry, type Manifest } from '@cr/schemas';
import { CrError, ImageError } from '../errors.js';
import { KernelError } from '../kernel/kernel-error.js';
import { Libc } from '../kernel/libc.js';
import { nodeFsError } from '../kernel/sysctl.js';
import { writePieces } from '../io/file-regions.js';
import { codecFor, FRAME_SIZE } from './compression.js';
import { digestOf, newBlobDigest } from './digest.js';
import { partialDirFor, prepareImagePath, removeStalePartials } from './image-path.js';
import { MANIFEST_DIGEST_FILE, MANIFEST_FILE } from './layout.js';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;
/**
 * File systems on which fallocate(2) reserves disk blocks (ext2/3/4, XFS): writing into reserved
 * blocks skips delayed allocation, and 1 GiB goes into the page cache in about 0.11 s instead of
 * 0.18 s here (ext4). On tmpfs it would allocate (and zero) memory instead, for nothing when the
 * blob turns out smaller (all-zero pages are left out).
 */
const PREALLOCATING_FILE_SYSTEMS = new Set([0xef53, 0x58465342]);
/** Below this, a blob's allocation costs too little to be worth a call. */
const PREALLOCATE_FROM = 1 << 20;

/** How a blob is streamed into the image. */
export interface StreamOptions {
  /** Told the size of each chunk once it is on disk (progress). */
  onWritten?: (bytes: number) => void;
  /** About how many bytes the blob will have (an upper bound is fine): the file's space is reserved at once. */
  expectedSize?: number;
}

/**
 * Writes an image atomically: everything goes into a hidden sibling directory, the manifest and
 * its digest last, and only then is that directory renamed onto the image path. A checkpoint that
 * fails or is killed leaves no directory at the image path (at most a `.NAME.cr-partial-*` one).
 * Image files hold process memory, so they are private to their owner (0600 in 0700 dirs).
 */
export class ImageWriter {
  private readonly files: Record<string, FileEntry> = {};
  /** Directories of the image made so far: a tree of 100 processes has some 400 files in a few. */
  private readonly made = new Set<string>();
  private done = false;
  private preallocates: boolean | undefined;

  private constructor(
    readonly imageDir: string,
    readonly workDir: string,
    private readonly signal: AbortSignal | undefined,
    private readonly compression: Compression | undefined,
  ) {}

  /**
   * Checks the image path (see prepareImagePath), removes what dead checkpoints left beside it,
   * and makes the partial directory: everything that can fail about the path fails here, before
   * the caller freezes anything. `signal` interrupts blob writing (Ctrl-C). With `compression`,
   * blobs are stored compressed (records stay as they are, small and readable).
   */
  static create(dir: string, signal?: AbortSignal, compression?: Compression): ImageWriter {
    if (compression) codecFor(compression);
    const imageDir = prepareImagePath(dir);
    removeStalePartials(dirname(imageDir));
    const workDir = partialDirFor(imageDir, randomBytes(4).toString('hex'));
    try {
      mkdirSync(workDir, { mode: DIR_MODE });
    } catch (err) {
      throw new ImageError(`cannot write the image beside ${dir}: ${nodeFsError('mkdir', workDir, err).message}`);
    }
    return new ImageWriter(imageDir, workDir, signal, compression);
  }

  /** Writes a small file (a record) in one go. */
  writeFile(rel: string, data: string | Uint8Array): void {
    const bytes = typeof data === 'string' ? Buffer.from(data) : data;
    const fd = this.openNew(rel);
    try {
      writePieces(fd, bytes, undefined, join(this.workDir, rel));
    } catch (err) {
      throw this.writeError('write', rel, err);
    } finally {
      closeSync(fd);
    }
    this.files[rel] = { size: bytes.byteLength, digest: digestOf(bytes) };
  }

  /**
   * Streams a blob to disk chunk by chunk, checksumming as it goes; never holds it whole. Each
   * chunk is written and hashed a piece at a time (see writePieces), while the source reads its
   * next chunk (on libuv's pool). `source` must not change until the promise settles.
   */
  async writeStream(rel: string, source: Uint8Array | AsyncIterable<Uint8Array>, options: StreamOptions = {}): Promise<void> {
    const { onWritten, expectedSize } = options;
    if (this.compression) return this.writeCompressed(rel, source, this.compression, onWritten);
    const fd = this.openNew(rel);
    const hash = newBlobDigest();
    let size = 0;
    try {
      const reserved = this.preallocate(fd, rel, expectedSize);
      for await (const chunk of slices(source)) {
        this.signal?.throwIfAborted();
        writePieces(fd, chunk, undefined, join(this.workDir, rel), (piece) => hash.update(piece));
        size += chunk.byteLength;
        onWritten?.(chunk.byteLength);
      }
      if (size < reserved) ftruncateSync(fd, size);
    } catch (err) {
      throw this.writeError('write', rel, err);
    } finally {
      closeSync(fd);
    }
    this.files[rel] = { size, digest: hash.digest() };
  }

  /**
   * Reserves the disk space of a blob of about `bytes` (see PREALLOCATING_FILE_SYSTEMS); returns
   * the file's size now, which the caller cuts back to what it wrote. Where the space cannot be
   * had (too little room for an upper bound the data may not reach), the blob is written as it comes.
   */
  private preallocate(fd: number, rel: string, bytes: number | undefined): number {
    if (bytes === undefined || bytes < PREALLOCATE_FROM) return 0;
    this.preallocates ??= PREALLOCATING_FILE_SYSTEMS.has(statfsSync(this.workDir).type);
    if (!this.preallocates) return 0;
    try {
      new Libc().fallocate(fd, 0, bytes, join(this.workDir, rel));
      return bytes;
    } catch (err) {
      if (err instanceof KernelError) return 0;
      throw err;
    }
  }

  /**
   * A blob as independent frames, each the compression of FRAME_SIZE bytes of it (the last, of
   * the rest). The digest and size are of the data itself, so that they mean the same whether or
   * not the image is compressed. A frame is written while the next is compressed on libuv's pool.
   */
  private async writeCompressed(rel: string, source: Uint8Array | AsyncIterable<Uint8Array>, algorithm: Compression, onWritten?: (bytes: number) => void): Promise<void> {
    const codec = codecFor(algorithm);
    const fd = this.openNew(rel);
    const hash = newBlobDigest();
    const frames: number[] = [];
    let size = 0;
    let compressing: Promise<Uint8Array> | undefined;
    try {
      let previous: { frame: Uint8Array; bytes: number } | undefined;
      for await (const data of frameSlices(slices(source))) {
        this.signal?.throwIfAborted();
        hash.update(data);
        size += data.byteLength;
        compressing = codec.compress(data);
        // Awaited below; until then a failure must not go unhandled.
        compressing.catch(() => undefined);
        if (previous) {
          writePieces(fd, previous.frame, undefined, join(this.workDir, rel));
          onWritten?.(previous.bytes);
        }
        const frame = await compressing;
        compressing = undefined;
        frames.push(frame.byteLength);
        previous = { frame, bytes: data.byteLength };
      }
      if (previous) {
        writePieces(fd, previous.frame, undefined, join(this.workDir, rel));
        onWritten?.(previous.bytes);
      }
    } catch (err) {
      throw this.writeError('write', rel, err);
    } finally {
      // A compression in flight reads the source's buffer, which the caller may reuse once this returns.
      await compressing?.catch(() => undefined);
      closeSync(fd);
    }
    const stored = frames.reduce((sum, n) => sum + n, 0);
    this.files[rel] = { size, digest: hash.digest(), compression: { algorithm, size: stored, frameSize: FRAME_SIZE, frames } };
  }

  /**
   * Writes the manifest (with the digest of every file) and makes the image appear at its path.
   * The format is the oldest that says all the image holds: 1 unless a file is compressed (2) or
   * the image has a parent (3).
   */
  commit(manifest: Omit<Manifest, 'files' | 'formatVersion'>): void {
    const compressed = Object.values(this.files).some((f) => f.compression);
    const formatVersion = manifest.parent ? INCREMENTAL_IMAGE_FORMAT_VERSION : compressed ? COMPRESSED_IMAGE_FORMAT_VERSION : PLAIN_IMAGE_FORMAT_VERSION;
    const full: Manifest = { ...manifest, formatVersion, files: { ...this.files } };
    const text = `${JSON.stringify(full, null, 2)}\n`;
    this.writeFile(MANIFEST_FILE, text);
    this.writeFile(MANIFEST_DIGEST_FILE, `${digestOf(text)}\n`);
    syncPath(this.workDir);
    try {
      rmdirSync(this.imageDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new ImageError(`cannot replace ${this.imageDir}: ${(err as Error).message}`);
    }
    renameSync(this.workDir, this.imageDir);
    syncPath(dirname(this.imageDir));
    this.done = true;
  }

  /** Takes a file written earlier out of the image again. */
  remove(rel: string): void {
    rmSync(join(this.workDir, rel), { force: true });
    delete this.files[rel];
  }

  /** Removes everything written so far; safe to call after commit (then it does nothing). */
  abort(): void {
    if (!this.done) rmSync(this.workDir, { recursive: true, force: true });
    this.done = true;
  }

  private openNew(rel: string): number {
    if (this.done) throw new Error(`image ${this.imageDir} is already committed or aborted`);
    const path = join(this.workDir, rel);
    try {
      const dir = dirname(path);
      if (!this.made.has(dir)) {
        mkdirSync(dir, { recursive: true, mode: DIR_MODE });
        this.made.add(dir);
      }
      return openSync(path, 'wx', FILE_MODE);
    } catch (err) {
      throw this.writeError('open', rel, err);
    }
  }

  /** A failed write (a full disk …) as an error naming the image file; errors that are cr's pass through. */
  private writeError(syscall: string, rel: string, err: unknown): unknown {
    if (err instanceof CrError || !(err instanceof Error)) return err;
    return new ImageError(`cannot write ${rel} of the image ${this.imageDir}: ${nodeFsError(syscall, join(this.workDir, rel), err).message}`, { cause: err });
  }
}

const SLICE = FRAME_SIZE;

async function* slices(source: Uint8Array | AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  const chunks = source instanceof Uint8Array ? [source] : source;
  for await (const chunk of chunks) {
    for (let off = 0; off < chunk.byteLength; off += SLICE) yield chunk.subarray(off, Math.min(off + SLICE, chunk.byteLength));
  }
}

/**
 * The data of `chunks` cut again into slices of exactly FRAME_SIZE bytes (the last, of the rest),
 * for compression frames. A chunk that is a whole slice passes through uncopied; smaller ones are
 * gathered into one buffer (the chunks' own may be reused once the next is asked for), which the
 * consumer must be done with when it asks for the next slice.
 */
async function* frameSlices(chunks: AsyncIterable<Uint8Array>): AsyncIterable<Uint8Array> {
  let gathered: Buffer | undefined;
  let filled = 0;
  for await (const chunk of chunks) {
    if (filled === 0 && chunk.byteLength === FRAME_SIZE) {
      yield chunk;
      continue;
    }
    for (let off = 0; off < chunk.byteLength; ) {
      gathered ??= Buffer.allocUnsafe(FRAME_SIZE);
      const n = Math.min(FRAME_SIZE - filled, chunk.byteLength - off);
      gathered.set(chunk.subarray(off, off + n), filled);
      filled += n;
      off += n;
      if (filled === FRAME_SIZE) {
        yield gathered;
        filled = 0;
      }
    }
  }
  if (filled > 0) yield gathered!.subarray(0, filled);
}

function syncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
