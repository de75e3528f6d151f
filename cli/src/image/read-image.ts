import { CrError, ExitCode } from '@cr/core';
import { readImage, type PluginRegistry, type ReadImage } from '@cr/core/engine';
import type { ObjectEntry } from '@cr/schemas';

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
