import * as Args from '@oclif/core/args';
import { formatPath, type ReadImage } from '@cr/core/engine';
import { fileEntrySchema, type ObjectEntry } from '@cr/schemas';
import microdiff from 'microdiff';
import { CrCommand } from '../../base-command.js';
import { readSoundImage } from '../../image/read-image.js';

/** One difference between two images. */
export interface ImageDifference {
  /** What differs: the manifest's header, an object (its entry in the manifest), its record, or one of its blobs. */
  in: 'manifest' | 'object' | 'record' | 'blob';
  object?: string;
  /** Where in it, e.g. vmas[3].end; the blob's name for a blob. */
  path?: string;
  change: 'added' | 'removed' | 'changed';
  old?: unknown;
  new?: unknown;
}

export default class InspectDiff extends CrCommand {
  static override summary = 'Show how two images differ.';
  static override description =
    'Compares the manifests (cr version, host, target, plugins, advice; not the creation time), the objects (added, removed, or with another policy decision, attributes or parents), every record field by field, and every blob by size and digest. Both images are checked first. Exits 0 whether or not they differ.';
  static override examples = ['<%= config.bin %> inspect diff img-monday img-tuesday', '<%= config.bin %> inspect diff img1 img2 --json'];
  static override enableJsonFlag = true;
  static override args = {
    image1: Args.string({ description: 'The first image directory.', required: true }),
    image2: Args.string({ description: 'The second image directory.', required: true }),
  };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(InspectDiff);
    await this.setUp(flags.config);
    const differences = diffImages(readSoundImage(args.image1, this.registry), readSoundImage(args.image2, this.registry));
    if (!this.jsonEnabled()) {
      this.log(`--- ${args.image1}\n+++ ${args.image2}`);
      for (const d of differences) this.log(describeDifference(d));
      if (differences.length === 0) this.log('the images hold the same objects, records and blobs');
    }
    return { same: differences.length === 0, differences };
  }
}

export function diffImages(a: ReadImage, b: ReadImage): ImageDifference[] {
  const header = (image: ReadImage) => {
    const { tool, host, target, plugins, advice } = image.manifest;
    return { tool, host, target, plugins, ...(advice ? { advice } : {}) };
  };
  const out: ImageDifference[] = fieldDifferences('manifest', undefined, header(a), header(b));
  const objectsA = new Map(a.manifest.objects.map((o) => [o.key, o]));
  const objectsB = new Map(b.manifest.objects.map((o) => [o.key, o]));
  for (const [key, entry] of objectsA) if (!objectsB.has(key)) out.push({ in: 'object', object: key, change: 'removed', old: entry });
  for (const [key, entry] of objectsB) if (!objectsA.has(key)) out.push({ in: 'object', object: key, change: 'added', new: entry });
  for (const [key, entryA] of objectsA) {
    const entryB = objectsB.get(key);
    if (!entryB) continue;
    out.push(...fieldDifferences('object', key, entryFields(entryA), entryFields(entryB)));
    out.push(...fieldDifferences('record', key, { record: a.records[key] ?? null }, { record: b.records[key] ?? null }, 1));
    const names = new Set([...Object.keys(entryA.blobs ?? {}), ...Object.keys(entryB.blobs ?? {})]);
    for (const name of names) {
      const fileA = entryA.blobs?.[name] ? a.manifest.files[entryA.blobs[name]] : undefined;
      const fileB = entryB.blobs?.[name] ? b.manifest.files[entryB.blobs[name]] : undefined;
      if (fileA?.digest === fileB?.digest && fileA?.size === fileB?.size) continue;
      out.push({ in: 'blob', object: key, path: name, change: !fileA ? 'added' : !fileB ? 'removed' : 'changed', ...(fileA ? { old: fileA } : {}), ...(fileB ? { new: fileB } : {}) });
    }
  }
  return out;
}

/** What an object entry says about the object, leaving out where its files are. */
function entryFields(entry: ObjectEntry): Omit<ObjectEntry, 'record' | 'blobs'> {
  const { record: _record, blobs: _blobs, ...fields } = entry;
  return fields;
}

/** microdiff's changes as differences; `skip` leading path parts are the wrapper's. */
function fieldDifferences(where: ImageDifference['in'], object: string | undefined, a: object, b: object, skip = 0): ImageDifference[] {
  return microdiff(a as Record<string, unknown>, b as Record<string, unknown>).map((d) => ({
    in: where,
    ...(object ? { object } : {}),
    path: formatPath(d.path.slice(skip)),
    change: d.type === 'CREATE' ? 'added' : d.type === 'REMOVE' ? 'removed' : 'changed',
    ...('oldValue' in d ? { old: d.oldValue } : {}),
    ...('value' in d ? { new: d.value } : {}),
  }));
}

function describeDifference(d: ImageDifference): string {
  const show = (v: unknown) => {
    const file = fileEntrySchema.safeParse(v);
    return file.success ? `${file.data.size} bytes, ${file.data.digest}` : JSON.stringify(v);
  };
  if (d.in === 'object' && d.path === undefined) return `${d.change === 'added' ? '+' : '-'} ${d.object}`;
  const where = [d.object, d.in === 'manifest' || d.in === 'object' ? '' : d.in, d.path].filter(Boolean).join(' ');
  if (d.change === 'added') return `+ ${where}: ${show(d.new)}`;
  if (d.change === 'removed') return `- ${where}: ${show(d.old)}`;
  return `~ ${where}: ${show(d.old)} → ${show(d.new)}`;
}
