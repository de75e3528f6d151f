import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
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
