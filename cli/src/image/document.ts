import { rmSync } from 'node:fs';
import { ImageError } from '@cr/core';
import { ImageWriter, describeZodError, readVerifiedImage, type PluginRegistry, type ReadImage } from '@cr/core/engine';
import { manifestSchema, recordFileSchema } from '@cr/schemas';
import { z } from 'zod';

/**
 * An image as one JSON document (crit's decode): the manifest without its file digests, the
 * record of every saved object, and every blob in base64, each under its object's key.
 */
export const imageDocumentSchema = z.lazy(() =>
  z.strictObject({
    format: z.literal('cr-image-document'),
    version: z.literal(1),
    manifest: manifestSchema.unwrap().omit({ files: true }),
    records: z.record(z.string(), recordFileSchema).describe('object key → its record file: {type, id, version, record}'),
    blobs: z.record(z.string(), z.record(z.string(), z.base64())).describe('object key → blob name → contents in base64'),
  }),
);
export type ImageDocument = z.infer<typeof imageDocumentSchema>;

/** The document of an image already read (and checked): every blob is read, its digest checked on the way. */
export async function decodeImage(image: ReadImage): Promise<ImageDocument> {
  const { files: _files, ...manifest } = image.manifest;
  const records: ImageDocument['records'] = {};
  const blobs: ImageDocument['blobs'] = {};
  for (const object of manifest.objects) {
    if (object.record) {
      records[object.key] = { type: object.type, id: object.id, version: versionOf(manifest, object.type), record: image.records[object.key] };
    }
    for (const [name, path] of Object.entries(object.blobs ?? {})) {
      const chunks: Uint8Array[] = [];
      for await (const chunk of image.reader.readBlobChunks(path)) chunks.push(Buffer.from(chunk));
      (blobs[object.key] ??= {})[name] = Buffer.concat(chunks).toString('base64');
    }
  }
  return { format: 'cr-image-document', version: 1, manifest, records, blobs };
}

/**
 * Writes the image a document describes at `dir` (which must not exist or be empty), every
 * digest computed anew, then reads it back as restore would: an image that does not check out
 * (a record its plugin refuses, a blob of the wrong size …) is removed again, and the error
 * lists its problems.
 */
export async function encodeImage(data: unknown, source: string, dir: string, registry: PluginRegistry): Promise<ReadImage> {
  const parsed = imageDocumentSchema.safeParse(data);
  if (!parsed.success) throw new ImageError(`${source} is not an image document (cr inspect decode writes them): ${describeZodError(parsed.error, data).join('; ')}`);
  const document = parsed.data;
  assertComplete(document, source);
  const writer = ImageWriter.create(dir);
  try {
    for (const object of document.manifest.objects) {
      if (object.record) writer.writeFile(object.record, `${JSON.stringify(document.records[object.key], null, 2)}\n`);
      for (const [name, path] of Object.entries(object.blobs ?? {})) await writer.writeStream(path, Buffer.from(document.blobs[object.key]![name]!, 'base64'));
    }
    writer.commit(document.manifest);
  } catch (err) {
    writer.abort();
    throw err;
  }
  let image: ReadImage;
  try {
    image = await readVerifiedImage(writer.imageDir, registry);
  } catch (err) {
    rmSync(writer.imageDir, { recursive: true, force: true });
    throw new ImageError(`${source} does not make a valid image, so nothing was written: ${(err as Error).message}`, { cause: err });
  }
  if (image.problems.length > 0) {
    rmSync(writer.imageDir, { recursive: true, force: true });
    throw new ImageError(`${source} does not make a valid image, so nothing was written:\n  ${image.problems.join('\n  ')}`);
  }
  return image;
}

/** Every record and blob the manifest names is in the document, and nothing else is. */
function assertComplete(document: ImageDocument, source: string): void {
  const expected = new Set<string>();
  for (const object of document.manifest.objects) {
    if (object.record) {
      expected.add(`record ${object.key}`);
      if (!document.records[object.key]) throw new ImageError(`${source}: the manifest lists a record for ${object.key}, but "records" has none`);
    }
    for (const name of Object.keys(object.blobs ?? {})) {
      expected.add(`blob ${object.key} ${name}`);
      if (document.blobs[object.key]?.[name] === undefined) throw new ImageError(`${source}: the manifest lists blob "${name}" of ${object.key}, but "blobs" has none`);
    }
  }
  for (const key of Object.keys(document.records)) {
    if (!expected.has(`record ${key}`)) throw new ImageError(`${source}: "records" holds ${key}, which the manifest lists no record for`);
  }
  for (const [key, named] of Object.entries(document.blobs)) {
    for (const name of Object.keys(named)) {
      if (!expected.has(`blob ${key} ${name}`)) throw new ImageError(`${source}: "blobs" holds "${name}" of ${key}, which the manifest lists no such blob for`);
    }
  }
}

function versionOf(manifest: ImageDocument['manifest'], type: string): number {
  return manifest.plugins.find((p) => p.type === type)!.version;
}
