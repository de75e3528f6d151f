import { createReadStream, createWriteStream, mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { manifestSchema } from '@cr/schemas';
import { CrError, ImageError } from '../errors.js';
import { nodeFsError } from '../kernel/sysctl.js';
import { MANIFEST_DIGEST_FILE, MANIFEST_FILE } from './layout.js';
import { isImageFileName } from './manifest-check.js';

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

/** tar-stream and the stream modules it brings, loaded only by the commands that stream an image. */
async function tarStream(): Promise<typeof import('tar-stream')> {
  return (await import('tar-stream')).default;
}

/**
 * An image as one byte stream (`cr checkpoint --stream`): a POSIX tar archive of the image
 * directory's regular files, named by their paths inside it, the records and blobs first and
 * manifest.json and manifest.sha256 last, as the directory is written: a stream cut short lacks
 * them and is refused like a partial directory. The files are the directory's own, digests and
 * (compressed) blobs alike, so that `tar -x` of a stream gives an image directory too.
 */
export async function writeImageStream(imageDir: string, output: Writable, signal?: AbortSignal): Promise<void> {
  const manifest = manifestSchema.parse(JSON.parse(readFileSync(join(imageDir, MANIFEST_FILE), 'utf8')));
  const names = [...Object.keys(manifest.files), MANIFEST_FILE, MANIFEST_DIGEST_FILE];
  const pack = (await tarStream()).pack();
  // The output failing (the reader went away) must end the file being packed too, not leave it waiting for room.
  const stop = new AbortController();
  const onAbort = () => stop.abort(signal!.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  const sent = pipeline(pack, output, { signal: stop.signal });
  sent.catch((err) => stop.abort(err));
  try {
    const packed = (async () => {
      for (const rel of names) {
        const path = join(imageDir, rel);
        const entry = pack.entry({ name: rel, size: statSync(path).size, mode: FILE_MODE, type: 'file', mtime: new Date() });
        await pipeline(createReadStream(path), entry, { signal: stop.signal });
      }
      pack.finalize();
    })();
    await Promise.all([packed, sent]);
  } catch (err) {
    throw streamError('write the image stream', err);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Reads an image stream into `dir`, an empty directory of the caller's, which then holds an image
 * directory for ImageReader to check: that is where digests, sizes and the manifest are verified.
 * Refused on the way: an entry that is not a regular file, a name that is not one an image has,
 * a name given twice, and a stream that ends before the archive does.
 */
export async function readImageStream(input: Readable, dir: string, signal?: AbortSignal): Promise<void> {
  const extract = (await tarStream()).extract();
  const received = pipeline(input, extract, ...(signal ? [{ signal }] : []));
  const names = new Set<string>();
  // The file being written, which a failure must close before the caller removes `dir`.
  let writing: Writable | undefined;
  const unpacked = (async () => {
    for await (const entry of extract) {
      const { name, type } = entry.header;
      names.add(name);
      if (type !== 'file') throw new ImageError(`the image stream holds ${JSON.stringify(name)}, a ${type ?? 'nameless'} entry; an image stream holds only regular files`);
      if (name !== MANIFEST_FILE && name !== MANIFEST_DIGEST_FILE && !isImageFileName(name)) {
        throw new ImageError(`the image stream holds ${JSON.stringify(name)}, which is not the name of a file of an image`);
      }
      const path = join(dir, name);
      mkdirSync(dirname(path), { recursive: true, mode: DIR_MODE });
      let file: Writable;
      try {
        file = createWriteStream(path, { flags: 'wx', mode: FILE_MODE });
        writing = file;
        await new Promise<void>((ok, fail) => file.once('open', () => ok()).once('error', fail));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw new ImageError(`the image stream holds ${name} twice`);
        throw new ImageError(`cannot write ${name} of the image stream: ${nodeFsError('open', path, err).message}`);
      }
      await pipeline(entry, file);
      writing = undefined;
    }
  })();
  // Whichever fails first is the error: an archive cut short fails the pipeline while the entries wait for more.
  unpacked.catch((err) => extract.destroy(err));
  try {
    await Promise.all([unpacked, received]);
  } catch (err) {
    const open = writing;
    if (open && !open.closed) {
      const closed = new Promise((done) => open.once('close', done));
      open.destroy();
      await closed;
    }
    throw streamError('read the image stream', err);
  }
  if (names.size === 0) throw new ImageError('the image stream is empty: the writer sent nothing (see its error)');
  const missing = [MANIFEST_FILE, MANIFEST_DIGEST_FILE].find((name) => !names.has(name));
  if (missing) throw new ImageError(`the image stream ended without ${missing}: it is not a whole image (the writer stopped early)`);
}

/** A stream error as one line: cr's own errors pass through; a pipe closed early is said so. */
function streamError(what: string, err: unknown): unknown {
  if (err instanceof CrError || !(err instanceof Error)) return err;
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'EPIPE' || code === 'ERR_STREAM_PREMATURE_CLOSE') return new ImageError(`cannot ${what}: the other end of the pipe closed before the whole image went through`, { cause: err });
  if (/unexpected end of data/i.test(err.message)) return new ImageError(`cannot ${what}: it ended before the end of the archive (the writer stopped early)`, { cause: err });
  if (err.name === 'AbortError') return err.cause instanceof Error ? streamError(what, err.cause) : err;
  return new ImageError(`cannot ${what}: ${err.message}`, { cause: err });
}
