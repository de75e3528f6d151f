import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_FORMAT_VERSION, type Compression, type FileEntry, type ObjectEntry } from '@cr/schemas';
import { ImageError } from '@cr/core';
import { ImageReader, ImageWriter, blobPath } from '@cr/core/engine';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const object: ObjectEntry = {
  key: 'uts-ns:7',
  type: 'uts-ns',
  id: '7',
  parents: [],
  attributes: {},
  policy: { decision: 'include', rule: 'default', source: 'default' },
  record: 'records/uts-ns/7.json',
  blobs: { data: 'blobs/uts-ns/7/data.bin' },
};
const schema = z.strictObject({ hostname: z.string() });

async function writeImage(compression?: Compression, blob: Uint8Array[] = [Buffer.alloc(1000, 1), Buffer.alloc(24, 2)]): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
  const img = join(dir, 'img');
  const writer = ImageWriter.create(img, undefined, compression);
  writer.writeFile(object.record!, JSON.stringify({ type: 'uts-ns', id: '7', version: 1, record: { hostname: 'box' } }));
  await writer.writeStream(object.blobs!.data!, (async function* () {
    yield* blob;
  })());
  writer.commit({
    format: 'cr-image',
    tool: { name: 'cr', version: '9.9.9' },
    createdAt: new Date().toISOString(),
    host: { kernelRelease: 'r', arch: 'x64', hostname: 'h' },
    target: { kind: 'process', pid: 1 },
    plugins: [{ type: 'uts-ns', version: 1, package: 'p' }],
    objects: [object],
  });
  return img;
}

/** Changes the manifest and makes its digest agree, as a forger would. */
function rewriteManifest(img: string, change: (m: Record<string, unknown>) => void): void {
  const manifest = JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')) as Record<string, unknown>;
  change(manifest);
  const text = `${JSON.stringify(manifest, null, 2)}\n`;
  writeFileSync(join(img, 'manifest.json'), text);
  writeFileSync(join(img, 'manifest.sha256'), `sha256:${createHash('sha256').update(text).digest('hex')}\n`);
}

function flipByte(path: string, at = 10): void {
  const bytes = readFileSync(path);
  bytes[at] ^= 0xff;
  writeFileSync(path, bytes);
}

describe('image format', () => {
  it('round-trips records and blobs, private to the owner', async () => {
    const img = await writeImage();
    const reader = ImageReader.open(img);
    expect(reader.readRecord(object, schema)).toEqual({ version: 1, record: { hostname: 'box' } });
    const blob = new Uint8Array(reader.blobSize('blobs/uts-ns/7/data.bin'));
    await reader.readBlobInto('blobs/uts-ns/7/data.bin', blob);
    expect(blob.slice(998, 1002)).toEqual(new Uint8Array([1, 1, 2, 2]));
    expect(await reader.verifyAll()).toEqual([]);
    expect(statSync(img).mode & 0o777).toBe(0o700);
    expect(statSync(join(img, object.record!)).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['img']);
  });

  it('leaves nothing at the image path when a write is aborted', () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
    const writer = ImageWriter.create(join(dir, 'img'));
    writer.writeFile('records/x/1.json', '{}');
    writer.abort();
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a newer format version, naming it', async () => {
    const img = await writeImage();
    rewriteManifest(img, (m) => (m.formatVersion = IMAGE_FORMAT_VERSION + 1));
    expect(() => ImageReader.open(img)).toThrowError(new RegExp(`format version ${IMAGE_FORMAT_VERSION + 1} \\(written by cr 9.9.9\\).*upgrade cr`));
  });

  it('detects a flipped byte in the manifest', async () => {
    const img = await writeImage();
    flipByte(join(img, 'manifest.json'), 30);
    expect(() => ImageReader.open(img)).toThrowError(/manifest.json is corrupt/);
  });

  it('detects a missing manifest digest (an unfinished image)', async () => {
    const img = await writeImage();
    rmSync(join(img, 'manifest.sha256'));
    expect(() => ImageReader.open(img)).toThrowError(/not a complete cr image: manifest.sha256 is missing/);
  });

  it('detects a truncated and a corrupted record, naming the file', async () => {
    const img = await writeImage();
    const path = join(img, object.record!);
    flipByte(path);
    expect(() => ImageReader.open(img).readRecord(object, schema)).toThrowError(new RegExp(`${path} is corrupt`));
    truncateSync(path, 5);
    expect(() => ImageReader.open(img).readRecord(object, schema)).toThrowError(new RegExp(`${path} is truncated: 5 of \\d+ bytes`));
  });

  it('detects a corrupted blob', async () => {
    const img = await writeImage();
    flipByte(join(img, object.blobs!.data!), 500);
    const reader = ImageReader.open(img);
    await expect(reader.readBlobInto(object.blobs!.data!, new Uint8Array(1024))).rejects.toThrowError(/data.bin is corrupt/);
    expect(await reader.verifyAll()).toHaveLength(1);
  });

  it('names the record and key path when a record fails its schema', async () => {
    const img = await writeImage();
    const strict = z.strictObject({ hostname: z.number() });
    expect(() => ImageReader.open(img).readRecord(object, strict)).toThrowError(/^record uts-ns:7 in .*7.json fails its schema: at "hostname": found "box"; expected number/);
  });

  it('refuses to write into a non-empty directory', async () => {
    const img = await writeImage();
    expect(() => ImageWriter.create(img)).toThrowError(ImageError);
    expect(existsSync(join(img, 'manifest.json'))).toBe(true);
  });
});

describe('image format, more ways to break it', () => {
  /** Rewrites manifest.json with `change` and writes a matching manifest.sha256, as a newer cr would. */
  /** Replaces a file of the image and makes the manifest agree with it, as a forger would. */
  function rewriteFile(img: string, rel: string, text: string): void {
    writeFileSync(join(img, rel), text);
    rewriteManifest(img, (m) => {
      (m.files as Record<string, unknown>)[rel] = { size: Buffer.byteLength(text), digest: `sha256:${createHash('sha256').update(text).digest('hex')}` };
    });
  }

  it('refuses an image whose manifest (with a valid digest) has a newer format version', async () => {
    const img = await writeImage();
    rewriteManifest(img, (m) => {
      m.formatVersion = IMAGE_FORMAT_VERSION + 1;
      m.newField = 'only a newer cr knows';
    });
    const err = (() => {
      try {
        ImageReader.open(img);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).exitCode).toBe(4);
    expect((err as Error).message).toBe(
      `${img} has image format version ${IMAGE_FORMAT_VERSION + 1} (written by cr 9.9.9); this cr reads format ${IMAGE_FORMAT_VERSION} and older: upgrade cr to restore it`,
    );
  });

  it('names the manifest and key path when a well-digested manifest is malformed', async () => {
    const img = await writeImage();
    rewriteManifest(img, (m) => ((m.objects as { policy: { decision: string } }[])[0]!.policy.decision = 'perhaps'));
    expect(() => ImageReader.open(img)).toThrowError(/manifest.json is malformed: at "objects\[0\].policy.decision": found "perhaps"/);
  });

  it('refuses a record that holds another object than the manifest says', async () => {
    const img = await writeImage();
    rewriteFile(img, object.record!, JSON.stringify({ type: 'uts-ns', id: '8', version: 1, record: { hostname: 'box' } }));
    const reader = ImageReader.open(img);
    expect(() => reader.readRecord(object, schema)).toThrowError(/record uts-ns:7 in .*7.json holds uts-ns:8 instead/);
  });

  it('names a record file that is missing, or present but not listed', async () => {
    const img = await writeImage();
    const path = join(img, object.record!);
    rmSync(path);
    const reader = ImageReader.open(img);
    expect(() => reader.readRecord(object, schema)).toThrowError(new RegExp(`${path} is missing from the image`));
    expect(await reader.verifyAll()).toEqual([`${path} is missing from the image`]);
    expect(() => reader.readFile('records/uts-ns/8.json')).toThrowError(/records\/uts-ns\/8.json is not listed in the manifest/);
  });

  it('every corruption is an ImageError with exit code 4', async () => {
    const img = await writeImage();
    flipByte(join(img, object.record!));
    const err = (() => {
      try {
        ImageReader.open(img).readRecord(object, schema);
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).exitCode).toBe(4);
  });

  it('detects a truncated or extended blob, and a target of the wrong size', async () => {
    const img = await writeImage();
    const blob = join(img, object.blobs!.data!);
    const reader = ImageReader.open(img);
    await expect(reader.readBlobInto(object.blobs!.data!, new Uint8Array(10))).rejects.toThrowError(`${blob} holds 1024 bytes but 10 were expected`);
    truncateSync(blob, 1000);
    await expect(reader.readBlobInto(object.blobs!.data!, new Uint8Array(1024))).rejects.toThrowError(`${blob} is truncated: 1000 of 1024 bytes`);
    truncateSync(blob, 1030);
    await expect(reader.readBlobInto(object.blobs!.data!, new Uint8Array(1024))).rejects.toThrowError(`${blob} is longer than the manifest says: 1030 bytes, expected 1024`);
  });

  it('streams a large blob in slices and reads it back byte for byte', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
    const img = join(dir, 'img');
    const writer = ImageWriter.create(img);
    const data = randomBytes(20 << 20); // more than one 8 MiB slice
    const big = blobPath('uts-ns', '7', 'big');
    const empty = blobPath('uts-ns', '7', 'empty');
    await writer.writeStream(big, data);
    await writer.writeStream(empty, new Uint8Array(0));
    writer.writeFile(object.record!, '{}');
    writer.commit({ ...baseManifest, plugins: [{ type: 'uts-ns', version: 1, package: 'p' }], objects: [{ ...object, blobs: { big, empty } }] });
    const reader = ImageReader.open(img);
    expect(reader.manifest.files[big]).toMatchObject({ size: data.byteLength, digest: expect.stringMatching(/^xxh3-64:[0-9a-f]{16}$/) });
    expect(reader.manifest.files[empty]!.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const back = new Uint8Array(reader.blobSize(big));
    await reader.readBlobInto(big, back);
    expect(Buffer.from(back).equals(data)).toBe(true);
    await reader.readBlobInto(empty, new Uint8Array(0));
    expect(statSync(join(img, 'blobs')).mode & 0o777).toBe(0o700);
    expect(statSync(join(img, big)).mode & 0o777).toBe(0o600);
  });

  it('digests a blob of up to 4 MiB with sha256, which needs no addon, and a larger one with xxh3-64, however it was written', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
    const img = join(dir, 'img');
    const writer = ImageWriter.create(img);
    const pieces = (data: Uint8Array, size: number) =>
      (async function* () {
        for (let at = 0; at < data.byteLength; at += size) yield data.subarray(at, at + size);
      })();
    const small = randomBytes(4 << 20);
    const large = randomBytes((4 << 20) + 1);
    const blobs = {
      whole: blobPath('uts-ns', '7', 'whole'),
      streamed: blobPath('uts-ns', '7', 'streamed'),
      largeWhole: blobPath('uts-ns', '7', 'largeWhole'),
      largeStreamed: blobPath('uts-ns', '7', 'largeStreamed'),
    };
    await writer.writeStream(blobs.whole, small);
    await writer.writeStream(blobs.streamed, pieces(small, 100_000), { expectedSize: 64 << 20 });
    await writer.writeStream(blobs.largeWhole, large);
    await writer.writeStream(blobs.largeStreamed, pieces(large, 1 << 20));
    writer.writeFile(object.record!, '{}');
    writer.commit({ ...baseManifest, plugins: [{ type: 'uts-ns', version: 1, package: 'p' }], objects: [{ ...object, blobs }] });
    const reader = ImageReader.open(img);
    const digests = Object.values(blobs).map((blob) => reader.manifest.files[blob]!.digest);
    expect(digests.map((d) => d.split(':')[0])).toEqual(['sha256', 'sha256', 'xxh3-64', 'xxh3-64']);
    expect(digests[1]).toBe(digests[0]);
    expect(digests[3]).toBe(digests[2]);
    for (const [blob, data] of [[blobs.whole, small], [blobs.streamed, small], [blobs.largeWhole, large], [blobs.largeStreamed, large]] as const) {
      const back = new Uint8Array(reader.blobSize(blob));
      await reader.readBlobInto(blob, back);
      expect(Buffer.from(back).equals(data)).toBe(true);
    }
  });

  it('reserves the space of a blob announced larger than it turns out, and keeps only what was written', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
    const img = join(dir, 'img');
    const writer = ImageWriter.create(img);
    const data = randomBytes(3 << 20);
    const smaller = blobPath('uts-ns', '7', 'smaller');
    const larger = blobPath('uts-ns', '7', 'larger');
    await writer.writeStream(smaller, data, { expectedSize: 64 << 20 });
    await writer.writeStream(larger, data, { expectedSize: 2 << 20 });
    writer.writeFile(object.record!, '{}');
    writer.commit({ ...baseManifest, plugins: [{ type: 'uts-ns', version: 1, package: 'p' }], objects: [{ ...object, blobs: { smaller, larger } }] });
    const reader = ImageReader.open(img);
    for (const blob of [smaller, larger]) {
      const st = statSync(join(img, blob));
      expect(st.size).toBe(data.byteLength);
      // The reservation beyond the data is given back (allocated blocks no more than the data's, plus a block).
      expect(st.blocks * 512).toBeLessThanOrEqual(data.byteLength + 4096);
      const back = new Uint8Array(reader.blobSize(blob));
      await reader.readBlobInto(blob, back);
      expect(Buffer.from(back).equals(data)).toBe(true);
    }
  });

  it('leaves nothing behind when a blob stream fails half-way and the write is aborted', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
    const writer = ImageWriter.create(join(dir, 'img'));
    writer.writeFile('records/x/1.json', '{}');
    const failing = (async function* () {
      yield Buffer.alloc(100);
      throw new Error('the source went away');
    })();
    await expect(writer.writeStream('blobs/x/1/data.bin', failing)).rejects.toThrowError('the source went away');
    writer.abort();
    expect(readdirSync(dir)).toEqual([]);
    expect(() => writer.writeFile('records/x/2.json', '{}')).toThrowError(/already committed or aborted/);
  });

  it('writes into an existing empty directory, but not onto a file', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
    const img = join(dir, 'img');
    mkdirSync(img);
    const writer = ImageWriter.create(img);
    writer.commit({ ...baseManifest, objects: [] });
    expect(readdirSync(img).sort()).toEqual(['manifest.json', 'manifest.sha256']);
    writeFileSync(join(dir, 'file'), 'x');
    expect(() => ImageWriter.create(join(dir, 'file'))).toThrowError(/exists and is not a directory/);
    expect(() => ImageReader.open(join(dir, 'nothing'))).toThrowError(/no image at .*nothing: the directory does not exist/);
  });
});

describe('image files that lead out of the image, or do not hang together', () => {
  /** Rewrites manifest.json with `change` and a matching digest, as a forger would. */
  function forgeManifest(img: string, change: (m: { objects: ObjectEntry[]; files: Record<string, unknown>; plugins: { version: number }[] }) => void): void {
    const manifest = JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8'));
    change(manifest);
    const text = JSON.stringify(manifest);
    writeFileSync(join(img, 'manifest.json'), text);
    writeFileSync(join(img, 'manifest.sha256'), `sha256:${createHash('sha256').update(text).digest('hex')}\n`);
  }
  const openError = (img: string) => {
    try {
      ImageReader.open(img);
    } catch (err) {
      expect(err).toBeInstanceOf(ImageError);
      expect((err as Error).message).not.toContain('\n');
      return (err as Error).message;
    }
    throw new Error('the image was accepted');
  };

  it('refuses file names outside the image, records and blobs where the format does not put them, and files no object refers to', async () => {
    const img = await writeImage();
    const files = JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')).files;
    for (const name of ['../../etc/passwd', '/etc/passwd', 'records/../../x', 'records//uts-ns/7.json', './records/uts-ns/7.json', 'manifest.json']) {
      const copy = join(dir, `copy-${randomBytes(4).toString('hex')}`);
      cpSync(img, copy, { recursive: true });
      forgeManifest(copy, (m) => {
        m.files = { ...files, [name]: files[object.record!] };
      });
      expect(openError(copy)).toBe(`${join(copy, 'manifest.json')} is inconsistent: it lists the file ${JSON.stringify(name)}, which is not a file name inside the image`);
    }
    forgeManifest(img, (m) => {
      m.objects[0]!.record = '../7.json';
    });
    expect(openError(img)).toMatch(/is inconsistent: object uts-ns:7: its record is at "..\/7.json" instead of records\/uts-ns\/7.json$/);
    forgeManifest(img, (m) => {
      m.objects[0]!.record = object.record;
      m.objects[0]!.blobs = {};
    });
    expect(openError(img)).toMatch(/is inconsistent: it lists the file blobs\/uts-ns\/7\/data.bin, which no object refers to$/);
  });

  it('refuses an object listed twice, a parent or user that is not in the image, and an included object without a record', async () => {
    const cases: [(m: { objects: ObjectEntry[] }) => void, RegExp][] = [
      [(m) => m.objects.push(m.objects[0]!), /it lists object uts-ns:7 twice$/],
      [(m) => (m.objects[0]!.parents = ['ipc-ns:1']), /object uts-ns:7: its parent ipc-ns:1 is neither an object of the image nor the checkpoint's target$/],
      [(m) => (m.objects[0]!.parents = ['target:process:2']), /its parent target:process:2 is neither/],
      [(m) => m.objects.push({ ...m.objects[0]!, key: 'uts-ns:8', id: '8', record: undefined, blobs: undefined, policy: { decision: 'external', rule: 'r', source: 's' }, reference: { usedBy: ['mm:1'] } }), /object uts-ns:8: it is used by mm:1, which is not a saved object/],
      [(m) => (m.objects[0]!.policy.decision = 'exclude'), /object uts-ns:7: it was not saved \(exclude\) but has a record$/],
    ];
    for (const [change, message] of cases) {
      const img = await writeImage();
      forgeManifest(img, change);
      expect(openError(img)).toMatch(message);
      rmSync(dir, { recursive: true });
    }
  });

  it('refuses a record whose version is not the one the manifest gives its type', async () => {
    const img = await writeImage();
    const text = JSON.stringify({ type: 'uts-ns', id: '7', version: 3, record: { hostname: 'box' } });
    writeFileSync(join(img, object.record!), text);
    forgeManifest(img, (m) => {
      m.files[object.record!] = { size: text.length, digest: `sha256:${createHash('sha256').update(text).digest('hex')}` };
    });
    const reader = ImageReader.open(img);
    expect(() => reader.readRecord(object, schema)).toThrowError(/^record uts-ns:7 in .*7.json has record version 3, but the manifest says uts-ns records are version 1$/);
  });

  it('reads no file through a symbolic link, a FIFO or a linked directory, and checks every size up front', async () => {
    const img = await writeImage();
    const blob = join(img, object.blobs!.data!);
    const outside = join(dir, 'outside.bin');
    writeFileSync(outside, Buffer.alloc(1024, 1));
    rmSync(blob);
    symlinkSync(outside, blob);
    const reader = ImageReader.open(img);
    expect(() => reader.checkFiles()).toThrowError(`${blob} is a symbolic link; the files of an image must be regular files inside it`);
    await expect(reader.readBlobInto(object.blobs!.data!, new Uint8Array(1024))).rejects.toThrowError(/is a symbolic link/);
    rmSync(blob);
    execFileSync('mkfifo', [blob]);
    expect(() => reader.checkFiles()).toThrowError(`${blob} is not a regular file; the files of an image must be regular files inside it`);
    expect(await reader.verifyAll()).toEqual([`${blob} is not a regular file; the files of an image must be regular files inside it`]);
    rmSync(blob);
    const blobDir = join(img, 'blobs/uts-ns/7');
    renameSync(blobDir, join(dir, 'elsewhere'));
    writeFileSync(join(dir, 'elsewhere/data.bin'), Buffer.alloc(1024));
    symlinkSync(join(dir, 'elsewhere'), blobDir);
    expect(() => reader.checkFiles()).toThrowError(`${blob} lies outside the image (a directory on its way is a symbolic link); the files of an image must be regular files inside it`);
    rmSync(blobDir);
    mkdirSync(blobDir);
    writeFileSync(blob, Buffer.alloc(1000));
    expect(() => reader.checkFiles()).toThrowError(`${blob} is truncated: 1000 of 1024 bytes`);
  });
});

const baseManifest = {
  format: 'cr-image' as const,
  formatVersion: IMAGE_FORMAT_VERSION,
  tool: { name: 'cr' as const, version: '0.0.0' },
  createdAt: new Date().toISOString(),
  host: { kernelRelease: 'r', arch: 'x64', hostname: 'h' },
  target: { kind: 'process' as const, pid: 1 },
  plugins: [],
};

describe('compressed blobs', () => {
  const rel = 'blobs/uts-ns/7/data.bin';
  /** 20 MiB that compress well, in uneven chunks: three frames, the last one partial. */
  const data = () => Array.from({ length: 5 }, (_, i) => Buffer.alloc(4 << 20, `chunk ${i} `));
  const expected = Buffer.concat(data());

  for (const algorithm of ['zstd', 'lz4'] as const) {
    it(`${algorithm}: round-trips, as frames of 8 MiB of data each, with the digest and size of the data itself`, async () => {
      const img = await writeImage(algorithm, data());
      const reader = ImageReader.open(img);
      expect(reader.manifest.formatVersion).toBe(2);
      const entry = reader.manifest.files[rel]!;
      expect(entry.size).toBe(expected.byteLength);
      expect(entry.compression!.algorithm).toBe(algorithm);
      expect(entry.compression!.frames).toHaveLength(3);
      expect(entry.compression!.size).toBe(statSync(join(img, rel)).size);
      expect(entry.compression!.size).toBeLessThan(expected.byteLength / 100);
      const back = Buffer.alloc(reader.blobSize(rel));
      await reader.readBlobInto(rel, back);
      expect(back.equals(expected)).toBe(true);
      expect(await reader.verifyAll()).toEqual([]);
      const plain = await writeImageElsewhere(data());
      expect(ImageReader.open(plain).manifest.files[rel]!.digest).toBe(entry.digest);
    });
  }

  it('an image without compressed files is still format 1', async () => {
    const img = await writeImage();
    expect(ImageReader.open(img).manifest.formatVersion).toBe(1);
  });

  it('refuses a compressed file in a format 1 manifest, and frames that cannot hold the data', async () => {
    const img = await writeImage('zstd', data());
    rewriteManifest(img, (m) => (m.formatVersion = 1));
    expect(() => ImageReader.open(img)).toThrowError(`the file ${rel} is compressed, which image format 1 has no place for`);
    rewriteManifest(img, (m) => {
      m.formatVersion = 2;
      (m.files as Record<string, FileEntry>)[rel]!.compression!.frames.pop();
    });
    expect(() => ImageReader.open(img)).toThrowError(`the file ${rel} has 2 frame(s) for ${expected.byteLength} bytes of data in frames of ${8 << 20}`);
  });

  it('names the frame that does not decompress', async () => {
    const img = await writeImage('zstd', data());
    const frames = ImageReader.open(img).manifest.files[rel]!.compression!.frames;
    flipByte(join(img, rel), frames[0]! + 1);
    const reader = ImageReader.open(img);
    const problem = `${join(img, rel)} is corrupt: frame 2 of 3 is not valid zstd data`;
    expect((await reader.verifyAll())[0]).toContain(problem);
    await expect(reader.readBlobInto(rel, Buffer.alloc(expected.byteLength))).rejects.toThrowError(problem);
  });
});

/** The same blob in a plain image beside the one of the test. */
async function writeImageElsewhere(blob: Uint8Array[]): Promise<string> {
  const first = dir;
  try {
    const img = await writeImage(undefined, blob);
    const moved = join(first, 'plain');
    renameSync(img, moved);
    rmSync(dir, { recursive: true, force: true });
    return moved;
  } finally {
    dir = first;
  }
}
