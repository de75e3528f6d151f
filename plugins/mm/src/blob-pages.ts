import { PAGE_SIZE, type FilePageRun, type Kernel, type Logger, type PageRun, type RemoteTask, type StoredBlob } from '@cr/core';
import { withoutStale } from './stale-pages.js';

/** A run of pages of a blob, in the order of its bytes; a stale one stays in the blob but is not restored from it. */
export interface BlobRun extends PageRun {
  stale?: true;
}

/** A blob of pages, from the image being restored or from a parent image. */
export interface PageBlob {
  /** What the log calls it. */
  readonly name: string;
  /** The blob to be read in place, or undefined when it is stored compressed. */
  stored(): StoredBlob | undefined;
  /** The blob streamed through cr, verified. */
  stream(): AsyncIterable<Uint8Array>;
}

/**
 * Puts the pages of `runs` but the stale ones back into the restored task, from `blob`, whose
 * bytes are those of `runs` one after another. A blob stored as it is, the task reads itself
 * (one copy, as CRIU's restorer does) while cr reads it beside to check its digest; the bytes of
 * a compressed one only cr can decompress, and it writes them into the task.
 */
export async function restoreBlobPages(kernel: Kernel, task: RemoteTask, blob: PageBlob, runs: readonly BlobRun[], log: Logger): Promise<void> {
  const stored = blob.stored();
  const pages = runs.reduce((n, r) => n + (r.stale ? 0 : r.pages), 0);
  if (!stored) {
    log.debug({ blob: blob.name, pages }, `${blob.name}: ${pages} page(s) written into PID ${task.pid} by cr (the blob is stored compressed)`);
    const kept = runs.filter((r) => !r.stale).map((r) => ({ address: r.address, pages: r.pages }));
    return kernel.memory.write(task.pid, kept, withoutStale(blob.stream(), runs));
  }
  log.debug({ blob: blob.name, pages }, `${blob.name}: ${pages} page(s) read by PID ${task.pid} itself from ${stored.path}`);
  try {
    await kernel.memory.fillFromFile(task, stored, placed(runs), stored.verified());
  } finally {
    stored.close();
  }
}

/** Where the bytes of each run that is not stale are in the blob. */
function placed(runs: readonly BlobRun[]): FilePageRun[] {
  const out: FilePageRun[] = [];
  let position = 0;
  for (const run of runs) {
    if (!run.stale) out.push({ address: run.address, pages: run.pages, position });
    position += run.pages * PAGE_SIZE;
  }
  return out;
}
