import { ImageError, type Kernel, type PageRun, type RemoteTask, type RestoreContext } from '@cr/core';
import type { MmRecord } from './record.js';
import { pageCount, runsOf, spansOf, splitByMembership, subtract, type Span } from './page-spans.js';
import { restoreBlobPages } from './blob-pages.js';

/**
 * Puts the pages `wanted` back into the restored `task` from its images up the parent chain (an
 * incremental image leaves its unchanged pages there): from each image's blobs the wanted pages
 * they hold (restoreBlobPages, verified); what that image too left to its parent from there.
 */
export async function restoreFromParents(kernel: Kernel, task: RemoteTask, wanted: readonly Span[], ctx: Pick<RestoreContext, 'key' | 'log' | 'parent'>): Promise<void> {
  const { key, parent } = ctx;
  if (wanted.length === 0) return;
  if (!parent) throw new ImageError(`${key} leaves ${pageCount(wanted)} page(s) to its parent image, which does not hold ${key}`);
  const record = parent.record as MmRecord;
  let left: Span[] = [...wanted];
  const layers: { blob: string; runs: readonly { address: string; pages: number; stale?: true }[] }[] = [{ blob: 'pages', runs: record.pages }, ...(record.precopied ?? [])];
  for (const layer of layers) {
    const pieces: { run: PageRun; stale?: true }[] = [];
    for (const run of layer.runs) {
      const whole = { address: BigInt(run.address), pages: run.pages };
      if (run.stale) pieces.push({ run: whole, stale: true });
      else for (const { run: piece, kept } of splitByMembership([whole], left)) pieces.push(kept ? { run: piece } : { run: piece, stale: true });
    }
    const taken = pieces.filter((p) => !p.stale).map((p) => p.run);
    if (taken.length === 0) continue;
    const blob = { name: `${layer.blob} of ${parent.imageDir}`, stored: () => parent.storedBlob(layer.blob), stream: () => parent.readBlob(layer.blob) };
    await restoreBlobPages(kernel, task, blob, pieces.map((p) => ({ ...p.run, ...(p.stale ? { stale: true as const } : {}) })), ctx.log);
    left = subtract(left, spansOf(taken));
  }
  const beyond = subtract(left, spansOf((record.fromParent ?? []).map((r) => ({ address: BigInt(r.address), pages: r.pages }))));
  if (beyond.length > 0) {
    throw new ImageError(`${key} leaves the pages at 0x${runsOf(beyond)[0]!.address.toString(16)} to its parent image ${parent.imageDir}, which does not hold them`);
  }
  await restoreFromParents(kernel, task, left, { key, log: ctx.log, parent: parent.parent() });
}
