import type { Manifest } from '@cr/schemas';
import { z } from 'zod';
import type { PluginRegistry } from '../plugin/registry.js';
import { ImageReader } from './image-reader.js';
import { recordProblems } from './record-checks.js';

/** An image with its records read, and every problem found on the way. */
export interface ReadImage {
  reader: ImageReader;
  manifest: Manifest;
  /** Object key → record, each checked against its file's digest and its plugin's schema. */
  records: Record<string, unknown>;
  problems: string[];
}

/**
 * Reads every record of the image at `dir` and checks it (digest, envelope, the plugin's schema,
 * consistency with its blobs and the other records). A record of a type no installed plugin
 * handles is read unchecked (and reported by recordProblems).
 */
export function readImage(dir: string, registry: PluginRegistry): ReadImage {
  return recordsOf(ImageReader.open(dir), registry);
}

/** readImage, and every blob's digest checked too, which reads (and decompresses) the whole image; the blobs' problems come first. */
export async function readVerifiedImage(dir: string, registry: PluginRegistry): Promise<ReadImage> {
  const reader = ImageReader.open(dir);
  const blobProblems = await reader.verifyAll();
  const image = recordsOf(reader, registry);
  image.problems.unshift(...blobProblems);
  return image;
}

function recordsOf(reader: ImageReader, registry: PluginRegistry): ReadImage {
  const { manifest } = reader;
  const problems: string[] = [];
  const records: Record<string, unknown> = {};
  for (const object of manifest.objects) {
    if (!object.record) continue;
    const schema = registry.has(object.type) ? registry.get(object.type).plugin.recordSchema : z.unknown();
    try {
      records[object.key] = reader.readRecord(object, schema).record;
    } catch (err) {
      problems.push((err as Error).message);
    }
  }
  const read = manifest.objects.filter((o) => Object.hasOwn(records, o.key)).map((entry) => ({ entry, record: records[entry.key] }));
  problems.push(...recordProblems(reader, registry, read));
  return { reader, manifest, records, problems };
}

