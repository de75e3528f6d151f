import { CrError, ExitCode } from '@cr/core';
import { ImageReader, recordProblems, type PluginRegistry } from '@cr/core/engine';
import type { Manifest, ObjectEntry } from '@cr/schemas';
import { z } from 'zod';

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
  const reader = ImageReader.open(dir);
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

/** readImage, and every blob's digest checked too, which reads (and decompresses) the whole image; the blobs' problems come first. */
export async function readVerifiedImage(dir: string, registry: PluginRegistry): Promise<ReadImage> {
  const reader = ImageReader.open(dir);
  const blobProblems = await reader.verifyAll();
  const image = readImage(dir, registry);
  image.problems.unshift(...blobProblems);
  return image;
}

/** readImage, refusing an image with any problem (exit 4): the views built on it show only what checks out. */
export function readSoundImage(dir: string, registry: PluginRegistry): ReadImage {
  const image = readImage(dir, registry);
  if (image.problems.length > 0) {
    throw new CrError(`image ${dir} failed verification (cr inspect ${dir} lists every problem): ${image.problems[0]}`, ExitCode.Image);
  }
  return image;
}

/** The saved objects of `type`, with their records. */
export function savedOfType<R>(image: ReadImage, type: string): { entry: ObjectEntry; record: R }[] {
  return image.manifest.objects.filter((o) => o.type === type && Object.hasOwn(image.records, o.key)).map((entry) => ({ entry, record: image.records[entry.key] as R }));
}
