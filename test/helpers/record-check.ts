import type { ImageObject, ImageRecord, RecordCheckContext } from '@cr/core';

/** What checkRecord is told about one record of an image, for plugin unit tests. */
export function recordCheckContext(
  key: string,
  over: { parents?: string[]; blobSizes?: Record<string, number>; objects?: ImageObject[]; records?: Record<string, ImageRecord[]> } = {},
): RecordCheckContext {
  return {
    key,
    id: key.slice(key.indexOf(':') + 1),
    parents: over.parents ?? [],
    blobSizes: over.blobSizes ?? {},
    object: (k) => over.objects?.find((o) => o.key === k),
    records: <T>(type: string) => (over.records?.[type] ?? []) as ImageRecord<T>[],
  };
}
