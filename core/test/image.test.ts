import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IMAGE_FORMAT_VERSION, type ObjectEntry } from '@cr/schemas';
import { ImageError, ImageReader, ImageWriter } from '@cr/core';
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

async function writeImage(formatVersion = IMAGE_FORMAT_VERSION): Promise<string> {
  dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
  const img = join(dir, 'img');
  const writer = ImageWriter.create(img);
  writer.writeFile(object.record!, JSON.stringify({ type: 'uts-ns', id: '7', version: 1, record: { hostname: 'box' } }));
  await writer.writeStream(object.blobs!.data!, (async function* () {
    yield Buffer.alloc(1000, 1);
    yield Buffer.alloc(24, 2);
  })());
  writer.commit({
    format: 'cr-image',
    formatVersion,
    tool: { name: 'cr', version: '9.9.9' },
    createdAt: new Date().toISOString(),
    host: { kernelRelease: 'r', arch: 'x64', hostname: 'h' },
    target: { kind: 'process', pid: 1 },
    plugins: [{ type: 'uts-ns', version: 1, package: 'p' }],
    objects: [object],
  });
  return img;
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
    reader.readBlobInto('blobs/uts-ns/7/data.bin', blob);
    expect(blob.slice(998, 1002)).toEqual(new Uint8Array([1, 1, 2, 2]));
    expect(reader.verifyAll()).toEqual([]);
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
    const img = await writeImage(IMAGE_FORMAT_VERSION + 1);
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
    expect(() => reader.readBlobInto(object.blobs!.data!, new Uint8Array(1024))).toThrowError(/data.bin is corrupt/);
    expect(reader.verifyAll()).toHaveLength(1);
  });

  it('names the record and key path when a record fails its schema', async () => {
    const img = await writeImage();
    const strict = z.strictObject({ hostname: z.number() });
    expect(() => ImageReader.open(img).readRecord(object, strict)).toThrowError(/record uts-ns:7 in .*7.json fails its schema:\n {2}at "hostname": found "box"; expected number/);
  });

  it('refuses to write into a non-empty directory', async () => {
    const img = await writeImage();
    expect(() => ImageWriter.create(img)).toThrowError(ImageError);
    expect(existsSync(join(img, 'manifest.json'))).toBe(true);
  });
});

describe('image format, more ways to break it', () => {
  /** Rewrites manifest.json with `change` and writes a matching manifest.sha256, as a newer cr would. */
  function rewriteManifest(img: string, change: (m: Record<string, unknown>) => void): void {
    const manifest = JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')) as Record<string, unknown>;
    change(manifest);
    const text = `${JSON.stringify(manifest, null, 2)}\n`;
    writeFileSync(join(img, 'manifest.json'), text);
    writeFileSync(join(img, 'manifest.sha256'), `sha256:${createHash('sha256').update(text).digest('hex')}\n`);
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
    expect(() => ImageReader.open(img)).toThrowError(/manifest.json is malformed:\n {2}at "objects\[0\].policy.decision": found "perhaps"/);
  });

  it('refuses a record that holds another object than the manifest says', async () => {
    const img = await writeImage();
    rewriteManifest(img, (m) => {
      const objects = m.objects as ObjectEntry[];
      objects[0] = { ...objects[0]!, key: 'uts-ns:8', id: '8' };
    });
    const reader = ImageReader.open(img);
    expect(() => reader.readRecord(reader.manifest.objects[0]!, schema)).toThrowError(/record uts-ns:8 in .*7.json holds uts-ns:7 instead/);
  });

  it('names a record file that is missing, or present but not listed', async () => {
    const img = await writeImage();
    const path = join(img, object.record!);
    rmSync(path);
    const reader = ImageReader.open(img);
    expect(() => reader.readRecord(object, schema)).toThrowError(new RegExp(`${path} is missing from the image`));
    expect(reader.verifyAll()).toEqual([`${path} is missing or unreadable`]);
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
    expect(() => reader.readBlobInto(object.blobs!.data!, new Uint8Array(10))).toThrowError(`${blob} holds 1024 bytes but 10 were expected`);
    truncateSync(blob, 1000);
    expect(() => reader.readBlobInto(object.blobs!.data!, new Uint8Array(1024))).toThrowError(`${blob} is truncated: 1000 of 1024 bytes`);
    truncateSync(blob, 1030);
    expect(() => reader.readBlobInto(object.blobs!.data!, new Uint8Array(1024))).toThrowError(`${blob} is longer than the manifest says: 1030 bytes, expected 1024`);
  });

  it('streams a large blob in slices and reads it back byte for byte', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-image-'));
    const img = join(dir, 'img');
    const writer = ImageWriter.create(img);
    const data = randomBytes(20 << 20); // more than one 8 MiB slice
    await writer.writeStream('blobs/big.bin', data);
    await writer.writeStream('blobs/empty.bin', new Uint8Array(0));
    writer.commit({ ...baseManifest, objects: [] });
    const reader = ImageReader.open(img);
    expect(reader.manifest.files['blobs/big.bin']).toMatchObject({ size: data.byteLength, digest: expect.stringMatching(/^xxh3-64:[0-9a-f]{16}$/) });
    const back = new Uint8Array(reader.blobSize('blobs/big.bin'));
    reader.readBlobInto('blobs/big.bin', back);
    expect(Buffer.from(back).equals(data)).toBe(true);
    reader.readBlobInto('blobs/empty.bin', new Uint8Array(0));
    expect(statSync(join(img, 'blobs')).mode & 0o777).toBe(0o700);
    expect(statSync(join(img, 'blobs/big.bin')).mode & 0o777).toBe(0o600);
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

const baseManifest = {
  format: 'cr-image' as const,
  formatVersion: IMAGE_FORMAT_VERSION,
  tool: { name: 'cr' as const, version: '0.0.0' },
  createdAt: new Date().toISOString(),
  host: { kernelRelease: 'r', arch: 'x64', hostname: 'h' },
  target: { kind: 'process' as const, pid: 1 },
  plugins: [],
};
