import { ImageError, PAGE_SIZE, type Kernel, type PageRun, type RemoteTask, type RestoreContext, type Mapping } from '@cr/core';
import type { MmRecord, VmaRecord } from './record.js';
import { OpenFiles, SPECIAL_KINDS, advise, mapOne, rebuildAioRings, setMmFields } from './restore.js';

const MADV_DONTNEED = 4;
/** Pages compared and written at a time: a run of a large heap is not held whole in cr's memory. */
const SLICE_PAGES = 2048;

const big = (v: string) => BigInt(v);
const isPrivateAnon = (v: VmaRecord) => v.kind === 'anon' && !v.shared;
const spanOf = (v: { start: bigint | string; end: bigint | string }) => `${BigInt(v.start)}-${BigInt(v.end)}`;

/**
 * Whether a child's address space can be restored on top of its parent's, which a new fork of the
 * restored parent gives it: the same vdso and vvar, and private anonymous memory at the same place
 * (memory inherited across fork, whose pages stay shared where they are still the same).
 */
export function inheritsFrom(child: MmRecord, parent: MmRecord): boolean {
  // Pages of a pre-copy round or of a parent image are written from there, not from `pages`: such a child is made from nothing.
  if ((child.precopied?.length ?? 0) > 0 || (child.fromParent?.length ?? 0) > 0) return false;
  const specials = (r: MmRecord) => r.vmas.filter((v) => SPECIAL_KINDS.includes(v.kind)).map(spanOf).join(' ');
  const parentAnon = new Set(parent.vmas.filter(isPrivateAnon).map(spanOf));
  return specials(child) === specials(parent) && child.vmas.some((v) => isPrivateAnon(v) && parentAnon.has(spanOf(v)));
}

/**
 * Restores `record` into a seed forked from its restored parent: the private anonymous mappings
 * the seed inherited at the saved places are kept, with their pages shared copy-on-write with
 * the parent's, and only the saved pages that differ from what is there are written; their
 * other pages, which the child did not have or held only zeros, are dropped (they read as zeros
 * again). Every other mapping is unmapped and made again as restoreAddressSpace does.
 */
export async function restoreOverInherited(kernel: Kernel, task: RemoteTask, record: MmRecord, ctx: RestoreContext): Promise<void> {
  const saved = new Map(record.vmas.filter(isPrivateAnon).map((v) => [spanOf(v), v]));
  const kept: VmaRecord[] = [];
  const inherited = kernel.mappings(task.pid);
  const files = new OpenFiles(task);
  try {
    await files.makeDeleted(record, ctx);
    task.together(() => {
      for (const vma of inherited) {
        // vdso and vvar are the same as saved ([vsyscall] is no mapping); cr's work area is cr's.
        if (vma.path.startsWith('[v') || task.isWorkArea(vma.start)) continue;
        const same = inheritedAnon(vma) ? saved.get(spanOf(vma)) : undefined;
        if (same) kept.push(same);
        else task.munmap(vma.start, vma.end - vma.start);
      }
      const keptSpans = new Set(kept.map(spanOf));
      files.openFor(record, ctx);
      for (const vma of record.vmas) {
        if (keptSpans.has(spanOf(vma))) {
          if (inherited.find((v) => v.start === big(vma.start))?.prot !== vma.prot) task.mprotect(big(vma.start), big(vma.end) - big(vma.start), vma.prot);
        } else if (!SPECIAL_KINDS.includes(vma.kind)) {
          mapOne(task, vma, files, ctx);
        }
      }
    });
    await writeChangedPages(kernel, task.pid, record, kept, ctx);
    await rebuildAioRings(task, record, ctx);
    task.together(() => {
      // First: its scratch writes would send the calls held back before them.
      setMmFields(task, record, files);
      for (const vma of kept) dropUnsaved(task, vma, record.pages);
      for (const vma of record.vmas) advise(task, vma);
      files.close();
    });
  } finally {
    files.close();
  }
}

function inheritedAnon(vma: Mapping): boolean {
  return !vma.shared && vma.inode === 0 && (vma.path === '' || vma.path === '[heap]' || vma.path === '[stack]' || vma.path.startsWith('[anon:'));
}

/** The saved pages, each written unless it lies in a kept mapping and already holds what was saved. */
async function writeChangedPages(kernel: Kernel, pid: number, record: MmRecord, kept: readonly VmaRecord[], ctx: RestoreContext): Promise<void> {
  const blob = new BlobReader(ctx.readBlob('pages'));
  const inKept = (address: bigint) => kept.some((v) => address >= big(v.start) && address < big(v.end));
  for (const run of record.pages) {
    for (let first = 0; first < run.pages; first += SLICE_PAGES) {
      const slice: PageRun = { address: big(run.address) + BigInt(first * PAGE_SIZE), pages: Math.min(SLICE_PAGES, run.pages - first) };
      const data = await blob.take(slice.pages * PAGE_SIZE);
      const now = kernel.memory.readRun(pid, slice);
      const writes: { run: PageRun; data: Uint8Array }[] = [];
      for (let i = 0; i < slice.pages; i++) {
        const address = slice.address + BigInt(i * PAGE_SIZE);
        const page = data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
        if (inKept(address) && Buffer.compare(page, now.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)) === 0) continue;
        const last = writes[writes.length - 1];
        if (last && last.run.address + BigInt(last.run.pages * PAGE_SIZE) === address) last.run.pages++;
        else writes.push({ run: { address, pages: 1 }, data: page });
      }
      if (writes.length === 0) continue;
      const chunks = writes.map((w) => data.subarray(Number(w.run.address - slice.address), Number(w.run.address - slice.address) + w.run.pages * PAGE_SIZE));
      await kernel.memory.write(pid, writes.map((w) => w.run), (async function* () { yield* chunks; })());
    }
  }
}

/** The pages of a kept mapping that were not saved read as zeros in the child: what the parent has there is dropped. */
function dropUnsaved(task: RemoteTask, vma: VmaRecord, pages: MmRecord['pages']): void {
  const start = big(vma.start);
  const end = big(vma.end);
  let at = start;
  const runs = pages.map((r) => ({ from: big(r.address), to: big(r.address) + BigInt(r.pages * PAGE_SIZE) })).filter((r) => r.to > start && r.from < end);
  for (const r of runs) {
    if (r.from > at) task.madvise(at, r.from - at, MADV_DONTNEED);
    if (r.to > at) at = r.to;
  }
  if (at < end) task.madvise(at, end - at, MADV_DONTNEED);
}

/** Takes exact byte counts from a blob read as a stream of chunks. */
class BlobReader {
  private readonly chunks: AsyncIterator<Uint8Array>;
  private buffered: Uint8Array = new Uint8Array(0);
  private at = 0;

  constructor(source: AsyncIterable<Uint8Array>) {
    this.chunks = source[Symbol.asyncIterator]();
  }

  async take(length: number): Promise<Buffer> {
    // Not zeroed: filled whole below, or an error.
    const out = Buffer.allocUnsafe(length);
    for (let filled = 0; filled < length; ) {
      if (this.at >= this.buffered.byteLength) {
        const next = await this.chunks.next();
        if (next.done) throw new ImageError(`the pages blob ended ${length - filled} bytes early`);
        this.buffered = next.value;
        this.at = 0;
      }
      const n = Math.min(length - filled, this.buffered.byteLength - this.at);
      out.set(this.buffered.subarray(this.at, this.at + n), filled);
      filled += n;
      this.at += n;
    }
    return out;
  }
}
