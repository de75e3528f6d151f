import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageError } from '../errors.js';
import type { ParentObject } from '../plugin/contract.js';
import type { PluginRegistry } from '../plugin/registry.js';
import { MANIFEST_DIGEST_FILE } from './layout.js';
import { readImage, type ReadImage } from './read-image.js';

/** Far more than an incremental series needs; a longer chain is a loop of parents. */
const MAX_CHAIN = 64;

/**
 * The image a checkpoint was taken against (`cr checkpoint --parent IMG`), with its own parent
 * and so on: where an incremental image's unchanged pages are. Each link is named in the child's
 * manifest by path and by the digest of its manifest, so that a parent replaced by another image
 * is refused rather than read. Records are checked when opened; blobs when they are read.
 */
export class ParentImage {
  private constructor(
    private readonly image: ReadImage,
    /** The digest of its manifest (manifest.sha256), which the child records. */
    readonly manifestDigest: string,
    readonly parent: ParentImage | undefined,
  ) {}

  get imageDir(): string {
    return this.image.reader.imageDir;
  }

  get manifest(): ReadImage['manifest'] {
    return this.image.manifest;
  }

  /** Opens the image at `dir` and its parents; `expectedDigest` is what the child recorded of it, if there is a child image. */
  static open(dir: string, registry: PluginRegistry, expectedDigest?: string, depth = 0): ParentImage {
    if (depth >= MAX_CHAIN) throw new ImageError(`the chain of parent images is more than ${MAX_CHAIN} long at ${dir}: is an image its own ancestor?`);
    const image = readImage(dir, registry);
    if (image.problems.length > 0) throw new ImageError(`the parent image ${dir} is not usable: ${image.problems[0]}`);
    const digest = readFileSync(join(image.reader.imageDir, MANIFEST_DIGEST_FILE), 'utf8').trim();
    if (expectedDigest !== undefined && digest !== expectedDigest) {
      throw new ImageError(`the parent image ${dir} is not the image this one was taken against (its manifest digest is ${digest}, not ${expectedDigest}); put that image back at ${dir}`);
    }
    const { parent } = image.manifest;
    return new ParentImage(image, digest, parent ? ParentImage.open(parent.path, registry, parent.manifest, depth + 1) : undefined);
  }

  /** Whether any blob of the image is stored compressed (then parts of it cannot be read in place). */
  compressed(): boolean {
    return Object.values(this.image.manifest.files).some((f) => f.compression);
  }

  /** Object `key` as this image holds it, or undefined when it has no record of it. */
  objectOf(key: string): ParentObject | undefined {
    const entry = this.image.manifest.objects.find((o) => o.key === key && o.record);
    if (!entry) return undefined;
    const { reader } = this.image;
    const rel = (name: string) => {
      const path = entry.blobs?.[name];
      if (!path) throw new ImageError(`object ${key} has no blob "${name}" in the parent image ${reader.imageDir}`);
      return path;
    };
    return {
      imageDir: reader.imageDir,
      record: this.image.records[key],
      blobFile: (name) => join(reader.imageDir, rel(name)),
      readBlob: (name) => reader.readBlobChunks(rel(name)),
      storedBlob: (name) => reader.openStoredBlob(rel(name)),
      parent: () => this.parent?.objectOf(key),
    };
  }
}
