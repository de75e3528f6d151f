import { ImageError } from '@cr/core';
import { readImage, readVerifiedImage } from '@cr/core/engine';
import type { Manifest } from '@cr/schemas';
import { sessionFor, type CommonOptions } from './options.js';

export interface InspectOptions extends CommonOptions {
  /** Also check every blob's digest, which reads the whole image (default true, as `cr inspect`). */
  verifyBlobs?: boolean;
  /** Resolve with the problems instead of rejecting with an ImageError when the image fails its checks. */
  allowProblems?: boolean;
}

export interface Inspection {
  /** The manifest: target, plugins, every object with its decision, the rule and its source. */
  manifest: Manifest;
  /** Object key → record, each checked against its digest and its plugin's schema. */
  records: Record<string, unknown>;
  /** One line per problem found; empty for a sound image. */
  problems: string[];
}

/**
 * Reads and checks an image, as `cr inspect --json` does. An image with problems rejects with an
 * ImageError naming the first, unless `allowProblems`.
 */
export async function inspect(imageDir: string, options: InspectOptions = {}): Promise<Inspection> {
  const { registry } = await sessionFor(options);
  const { manifest, records, problems } = (options.verifyBlobs ?? true) ? await readVerifiedImage(imageDir, registry) : readImage(imageDir, registry);
  if (problems.length > 0 && !options.allowProblems) {
    throw new ImageError(`image ${imageDir} failed verification: ${problems[0]}${problems.length > 1 ? ` (and ${problems.length - 1} more)` : ''}`);
  }
  return { manifest, records, problems };
}
