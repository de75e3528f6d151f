import { closeSync, openSync } from 'node:fs';
import { readRegions, writeRegions, type FileRegion } from '../io/file-regions.js';
import { PAGE_SIZE, type PageRun } from './pagemap.js';
import { nodeFsError } from './sysctl.js';

/**
 * Bulk access to another process's memory through /proc/PID/mem, which (unlike
 * process_vm_readv/writev) also reaches pages the process itself may not read or write: a
 * read-only code page that was patched, a PROT_NONE guard. Reads and writes run on libuv's pool.
 */
export class TaskMemory {
  /** Streams the pages of `runs`, in order, in chunks of at most 8 MiB. */
  async *read(pid: number, runs: readonly PageRun[]): AsyncGenerator<Uint8Array> {
    const fd = this.open(pid, 'r');
    try {
      yield* readRegions(fd, regionsOf(runs), `/proc/${pid}/mem`);
    } finally {
      closeSync(fd);
    }
  }

  /** Writes the bytes of `source` into the pages of `runs`, in order. */
  async write(pid: number, runs: readonly PageRun[], source: AsyncIterable<Uint8Array>): Promise<void> {
    const fd = this.open(pid, 'r+');
    try {
      await writeRegions(fd, regionsOf(runs), source, `/proc/${pid}/mem`);
    } finally {
      closeSync(fd);
    }
  }

  private open(pid: number, flags: string): number {
    try {
      return openSync(`/proc/${pid}/mem`, flags);
    } catch (err) {
      throw nodeFsError('open', `/proc/${pid}/mem`, err);
    }
  }
}

/** User addresses fit in 47 bits, so they are exact as file positions. */
function regionsOf(runs: readonly PageRun[]): FileRegion[] {
  return runs.map((r) => ({ position: Number(r.address), length: r.pages * PAGE_SIZE }));
}
