import { join } from 'node:path';
import type { ObjectEntry } from '@cr/schemas';
import type { ImageObject, ImageRecord, RecordCheckContext } from '../plugin/contract.js';
import type { PluginRegistry } from '../plugin/registry.js';
import type { ImageReader } from './image-reader.js';

/** Problems named per record; a record broken everywhere would otherwise make a screenful. */
const MAX_SHOWN = 3;

/** A record read from an image, schema-checked, with the manifest entry of its object. */
export interface ReadRecord {
  readonly entry: ObjectEntry;
  readonly record: unknown;
}

/**
 * Checks that each record hangs below parents of the types its plugin collects from, and asks
 * its plugin whether it agrees with its blobs and the rest of the image (`checkRecord`).
 * Returns one line per inconsistent record, naming it and its file.
 */
export function recordProblems(reader: ImageReader, registry: PluginRegistry, records: readonly ReadRecord[]): string[] {
  const { manifest } = reader;
  const objects = new Map<string, ImageObject>(
    manifest.objects.map((o) => [o.key, { key: o.key, type: o.type, id: o.id, parents: o.parents, attributes: o.attributes, saved: o.record !== undefined }]),
  );
  const byType = new Map<string, ImageRecord[]>();
  for (const { entry, record } of records) {
    const list = byType.get(entry.type) ?? [];
    list.push({ key: entry.key, parents: entry.parents, record });
    byType.set(entry.type, list);
  }
  const problems: string[] = [];
  for (const { entry, record } of records) {
    if (!registry.has(entry.type)) continue;
    const { plugin } = registry.get(entry.type);
    const found = parentProblems(entry, plugin.collectsFrom, objects);
    if (plugin.checkRecord) found.push(...plugin.checkRecord(record, checkContext(reader, entry, objects, byType)));
    if (found.length === 0) continue;
    const shown = found.length > MAX_SHOWN ? [...found.slice(0, MAX_SHOWN), `${found.length - MAX_SHOWN} more`] : found;
    problems.push(`record ${entry.key} in ${join(reader.imageDir, entry.record!)} does not agree with the image: ${shown.join('; ')}`);
  }
  return problems;
}

/** Every object is collected below parents of the types its plugin collects from. */
function parentProblems(entry: ObjectEntry, collectsFrom: readonly string[], objects: ReadonlyMap<string, ImageObject>): string[] {
  if (entry.parents.length === 0) return [`it has no parent; objects of type ${entry.type} are found below ${collectsFrom.join(' or ')}`];
  return entry.parents.flatMap((key) => {
    // The checkpoint's target is no object of the image: its type is its key but the id.
    const type = objects.get(key)?.type ?? key.slice(0, key.lastIndexOf(':'));
    return collectsFrom.includes(type) ? [] : [`its parent ${key} is of type ${type}, but objects of type ${entry.type} are found below ${collectsFrom.join(' or ')}`];
  });
}

function checkContext(reader: ImageReader, entry: ObjectEntry, objects: ReadonlyMap<string, ImageObject>, byType: ReadonlyMap<string, ImageRecord[]>): RecordCheckContext {
  return {
    key: entry.key,
    id: entry.id,
    parents: entry.parents,
    blobSizes: Object.fromEntries(Object.entries(entry.blobs ?? {}).map(([name, rel]) => [name, reader.blobSize(rel)])),
    object: (key) => objects.get(key),
    records: <T>(type: string) => (byType.get(type) ?? []) as ImageRecord<T>[],
  };
}

/**
 * The problems with a record's blobs: each blob in `expected` must be there with that size in
 * bytes, and there must be no other. For `checkRecord`.
 */
export function blobProblems(ctx: Pick<RecordCheckContext, 'blobSizes'>, expected: Readonly<Record<string, number>>): string[] {
  const problems: string[] = [];
  for (const [name, size] of Object.entries(expected)) {
    const actual = ctx.blobSizes[name];
    if (actual === undefined) problems.push(`it has no "${name}" blob`);
    else if (actual !== size) problems.push(`its "${name}" blob holds ${actual} bytes where the record implies ${size}`);
  }
  for (const name of Object.keys(ctx.blobSizes)) if (!Object.hasOwn(expected, name)) problems.push(`it has a "${name}" blob, which its type never writes`);
  return problems;
}
