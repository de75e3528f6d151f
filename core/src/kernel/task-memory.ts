import { closeSync, openSync, readSync, writeSync } from 'node:fs';
import { procDir } from './proc-dir.js';
import { fillFromFile, type FilePageRun, type SourceFile } from './file-into-task.js';
import { readMappings, type Mapping, type Vma } from './proc-maps.js';
import type { RemoteTask } from './remote-task.js';
import { PROT_READ, PROT_WRITE } from './syscalls.js';
import { CHUNK_SIZE, readAhead, readFully, readRegions } from '../io/file-regions.js';
import { CrError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import { IOV_MAX, Libc, type RemoteRange } from './libc.js';
import { PAGE_SIZE, type PageRun } from './pagemap.js';
import { nodeFsError } from './sysctl.js';

const ENOSYS = 38;

/** How TaskMemory.read reads. */
export interface ReadOptions {
  /**
   * Memory that cannot be read (a running process unmapped it meanwhile, or is gone) comes as
   * zeros and is reported here, a range at a time, instead of failing the read.
   */
  unreadable?: (range: RemoteRange) => void;
  /**
   * The mappings of the process, read from its smaps while it is stopped, and stopped until the
   * read ends: the pages of a mapping no other process maps are then read with process_vm_readv.
   */
  stopped?: readonly Vma[];
}

/** Up to this many bytes in all, TaskMemory.read reads on the JS thread, not on libuv's pool. */
const READ_NOW_MAX = 1 << 20;

/**
 * Bulk access to another process's memory. Reads go, a chunk ahead of the consumer, on libuv's
 * pool; a read of READ_NOW_MAX bytes or less is made at once on the JS thread. process_vm_readv
 * copies once where /proc/PID/mem copies twice (through a page of the kernel's) and looks pages up
 * one by one: 1 GiB in 0.12 s against 0.33 s here. But it pins the pages it reads, and the kernel
 * gives a process its own copy of an anonymous page it shares copy-on-write (with its parent or
 * children since fork) before it pins it, so reading that way could grow a process left running by
 * every page it shares. So it reads only the mappings of a stopped process in which smaps counts
 * no page mapped elsewhere and that KSM may not merge (VmFlags "mg": a merged page is shared by
 * nature), and everything else goes through /proc/PID/mem, which pins nothing. Writes (into a
 * restored process, whose pages are its own) move with process_vm_writev, up to IOV_MAX ranges per
 * call, one copy; it stops at a page the process itself may not write (a read-only page that was
 * patched), and from there on the chunk goes through /proc/PID/mem, which reaches every page.
 * Writes run on the JS thread while the next chunk of their source is read on the pool.
 */
export class TaskMemory {
  /** Whether process_vm_readv/writev exist here (false after ENOSYS). */
  private fast = true;

  constructor(
    private readonly libc = new Libc(),
    private readonly chunkSize = CHUNK_SIZE,
    private readonly readNowMax = READ_NOW_MAX,
  ) {}

  /** Streams the pages of `runs`, in order, in chunks of at most 8 MiB, read ahead (see readAhead). */
  async *read(pid: number, runs: readonly PageRun[], options: ReadOptions = {}): AsyncGenerator<Uint8Array> {
    const { unreadable, stopped } = options;
    const chunks = packChunks(runs, this.chunkSize);
    if (chunks.length === 0) return;
    let mem: ProcMem | undefined;
    try {
      mem = new ProcMem(pid, 'r');
    } catch (err) {
      if (!unreadable) throw err;
    }
    // A small read is made on the JS thread: a round trip to libuv's pool would cost more than
    // the copy, once per range for a process of a tree (whose pages it shares are read by ranges).
    const now = chunks.reduce((sum, c) => sum + c.length, 0) <= this.readNowMax;
    const readFrom = (from: ProcMem, into: Buffer, address: bigint) => (now ? from.read(into, address) : from.readAsync(into, address));
    const readRange = async (range: RemoteRange, into: Buffer) => {
      if (!unreadable) return readFrom(mem!, into, range.address);
      try {
        if (!mem) throw new CrError(`PID ${pid} is gone`);
        await readFrom(mem, into, range.address);
      } catch {
        into.fill(0);
        unreadable(range);
      }
    };
    const pinnable = stopped ? stopped.filter(mayPin) : [];
    try {
      yield* readAhead(
        chunks.map((c) => c.length),
        async (i, target) => {
          let at = 0;
          for (const { ranges, length, pin } of byPinning(chunks[i]!.ranges, pinnable)) {
            const into = target.subarray(at, at + length);
            const copied = pin && this.fast ? await (now ? this.libc.processVmRead(pid, into, ranges) : this.libc.processVmReadAsync(pid, into, ranges)) : 0;
            for (const [range, offset] of rest(ranges, copied)) await readRange(range, into.subarray(offset, offset + range.length));
            at += length;
          }
          return target;
        },
      );
    } finally {
      mem?.close();
    }
  }

  /** Writes the bytes of `source` into the pages of `runs`, in order. */
  async write(pid: number, runs: readonly PageRun[], source: AsyncIterable<Uint8Array>): Promise<void> {
    const total = runs.reduce((sum, r) => sum + r.pages * PAGE_SIZE, 0);
    // Opened only for what process_vm_writev leaves: usually nothing.
    const mem = new LazyProcMem(pid);
    try {
      const cursor = new RunCursor(runs);
      let written = 0;
      for await (const chunk of source) {
        if (written + chunk.byteLength > total) throw new CrError(`/proc/${pid}/mem: ${written + chunk.byteLength - total} bytes more than the ${total} expected`);
        for (let offset = 0; offset < chunk.byteLength; ) {
          const ranges = cursor.take(chunk.byteLength - offset);
          const length = ranges.reduce((sum, r) => sum + r.length, 0);
          this.writeRanges(pid, mem, chunk.subarray(offset, offset + length), ranges);
          offset += length;
        }
        written += chunk.byteLength;
      }
      if (written !== total) throw new CrError(`/proc/${pid}/mem: ${written} bytes where ${total} were expected`);
    } finally {
      mem.close();
    }
  }

  /**
   * Puts the pages of `runs` into a stopped task from a file cr holds open. The pages it may write
   * the task reads itself, one copy from the page cache into its memory, while cr reads `alongside`
   * (the same file from its start, which checks its digest) beside it and writes a share of them
   * itself as it goes (process_vm_writev): see fillFromFile. The pages of mappings it may not
   * write (a read-only page that was patched, PROT_NONE) cr reads and writes through
   * /proc/PID/mem, which reaches every page, after those.
   */
  async fillFromFile(task: RemoteTask, file: SourceFile, runs: readonly FilePageRun[], alongside?: AsyncIterable<Uint8Array>): Promise<void> {
    const { writable, protectedRuns } = byWritability(runs, readMappings(task.pid));
    const mem = new LazyProcMem(task.pid);
    try {
      await fillFromFile(task, file, writable, alongside && { chunks: alongside, write: (data, ranges) => this.writeRanges(task.pid, mem, data, ranges) });
    } finally {
      mem.close();
    }
    if (protectedRuns.length === 0) return;
    const regions = protectedRuns.map((r) => ({ position: r.position, length: r.pages * PAGE_SIZE }));
    await this.write(task.pid, protectedRuns, readRegions(file.fd, regions, file.path));
  }

  /** The pages of one `run`, read at once, as `read` reads them (without pinning them). */
  readRun(pid: number, run: PageRun): Buffer {
    // Not zeroed: the read fills it or throws.
    const target = Buffer.allocUnsafe(run.pages * PAGE_SIZE);
    const mem = new ProcMem(pid, 'r');
    try {
      mem.read(target, run.address);
    } finally {
      mem.close();
    }
    return target;
  }

  private writeRanges(pid: number, mem: LazyProcMem, data: Uint8Array, ranges: readonly RemoteRange[]): void {
    let done = 0;
    if (this.fast) {
      try {
        done = this.libc.processVmWrite(pid, data, ranges);
      } catch (err) {
        done = this.failed(err);
      }
    }
    for (const [r, at] of rest(ranges, done)) mem.get().write(data.subarray(at, at + r.length), r.address);
  }

  /** A cross-memory call failed: 0 bytes moved, /proc/PID/mem does the whole chunk. */
  private failed(err: unknown): number {
    if (!(err instanceof KernelError)) throw err;
    // A kernel without CONFIG_CROSS_MEMORY_ATTACH: no use asking again.
    if (err.errno === ENOSYS) this.fast = false;
    return 0;
  }
}

/** `runs` cut where mappings begin and end: the parts in mappings with PROT_WRITE, and the others. */
function byWritability(runs: readonly FilePageRun[], vmas: readonly Mapping[]): { writable: FilePageRun[]; protectedRuns: FilePageRun[] } {
  const writable: FilePageRun[] = [];
  const protectedRuns: FilePageRun[] = [];
  const page = BigInt(PAGE_SIZE);
  for (const run of runs) {
    const end = run.address + BigInt(run.pages) * page;
    for (let at = run.address; at < end; ) {
      const next = vmas[firstEndingAfter(vmas, at)];
      const inside = next !== undefined && next.start <= at;
      const boundary = next === undefined ? end : inside ? next.end : next.start;
      const stop = boundary < end ? boundary : end;
      const part = { address: at, pages: Number((stop - at) / page), position: run.position + Number(at - run.address) };
      (inside && next.prot & PROT_WRITE ? writable : protectedRuns).push(part);
      at = stop;
    }
  }
  return { writable, protectedRuns };
}

/** The index of the first of `vmas` (in address order) that ends after `address`: the one holding it, or the next. */
function firstEndingAfter(vmas: readonly Mapping[], address: bigint): number {
  let low = 0;
  let high = vmas.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (vmas[mid]!.end <= address) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** The ranges of one chunk: at most IOV_MAX of them, `length` bytes in all. */
interface Chunk {
  ranges: RemoteRange[];
  length: number;
}

/** Cuts the runs into chunks of at most `chunkSize` bytes and IOV_MAX ranges. */
function packChunks(runs: readonly PageRun[], chunkSize: number): Chunk[] {
  const cursor = new RunCursor(runs);
  const chunks: Chunk[] = [];
  for (let ranges; (ranges = cursor.take(chunkSize)).length > 0; ) chunks.push({ ranges, length: ranges.reduce((sum, r) => sum + r.length, 0) });
  return chunks;
}

/** Walks the bytes of page runs in order, handing out ranges. */
class RunCursor {
  private index = 0;
  private within = 0;

  constructor(private readonly runs: readonly PageRun[]) {}

  /** The next ranges, together at most `bytes` long and at most IOV_MAX of them. */
  take(bytes: number): RemoteRange[] {
    const ranges: RemoteRange[] = [];
    let left = bytes;
    while (left > 0 && ranges.length < IOV_MAX && this.index < this.runs.length) {
      const run = this.runs[this.index]!;
      const length = Math.min(run.pages * PAGE_SIZE - this.within, left);
      ranges.push({ address: run.address + BigInt(this.within), length });
      left -= length;
      this.within += length;
      if (this.within === run.pages * PAGE_SIZE) {
        this.index++;
        this.within = 0;
      }
    }
    return ranges;
  }
}

/** What is left of `ranges` after their first `skip` bytes, each part with its offset among them. */
function rest(ranges: readonly RemoteRange[], skip: number): [RemoteRange, number][] {
  const parts: [RemoteRange, number][] = [];
  let at = 0;
  for (const r of ranges) {
    const from = Math.max(0, skip - at);
    if (from < r.length) parts.push([{ address: r.address + BigInt(from), length: r.length - from }, at + from]);
    at += r.length;
  }
  return parts;
}

/**
 * Whether process_vm_readv may read the pages of `vma` of a stopped process without the kernel
 * copying any first (see TaskMemory), and can: unlike /proc/PID/mem, it does not force its way
 * into memory the process itself may not read.
 */
function mayPin(vma: Vma): boolean {
  return (vma.prot & PROT_READ) !== 0 && vma.sharedResident === 0 && !vma.flags.includes('mg');
}

/** `ranges` (consecutive in a buffer, each within one mapping) cut into groups of neighbours that lie, or do not lie, in the mappings of `pinnable`. */
function byPinning(ranges: readonly RemoteRange[], pinnable: readonly Mapping[]): { ranges: RemoteRange[]; length: number; pin: boolean }[] {
  const groups: { ranges: RemoteRange[]; length: number; pin: boolean }[] = [];
  for (const range of ranges) {
    const holder = pinnable[firstEndingAfter(pinnable, range.address)];
    const pin = holder !== undefined && holder.start <= range.address && range.address + BigInt(range.length) <= holder.end;
    const last = groups[groups.length - 1];
    if (last && last.pin === pin) {
      last.ranges.push(range);
      last.length += range.length;
    } else groups.push({ ranges: [range], length: range.length, pin });
  }
  return groups;
}

/** /proc/PID/mem: every read, and the writes process_vm_writev cannot make. Addresses fit in 47 bits: exact as positions. */
class ProcMem {
  private readonly fd: number;
  private readonly path: string;

  constructor(pid: number, flags: 'r' | 'r+') {
    this.path = `${procDir(pid)}/mem`;
    try {
      this.fd = openSync(this.path, flags);
    } catch (err) {
      throw nodeFsError('open', this.path, err);
    }
  }

  async readAsync(target: Buffer, address: bigint): Promise<void> {
    const where = `${this.path} at 0x${address.toString(16)}`;
    try {
      await readFully(this.fd, target, { position: Number(address), length: target.byteLength }, where);
    } catch (err) {
      throw err instanceof CrError ? err : nodeFsError('read', where, err);
    }
  }

  read(target: Uint8Array, address: bigint): void {
    for (let done = 0; done < target.byteLength; ) {
      const position = Number(address) + done;
      let n: number;
      try {
        n = readSync(this.fd, target, done, target.byteLength - done, position);
      } catch (err) {
        throw nodeFsError('read', `${this.path} at 0x${position.toString(16)}`, err);
      }
      if (n === 0) throw new CrError(`${this.path}: only ${done} of ${target.byteLength} bytes readable at 0x${address.toString(16)}`);
      done += n;
    }
  }

  write(data: Uint8Array, address: bigint): void {
    for (let done = 0; done < data.byteLength; ) {
      const position = Number(address) + done;
      let n: number;
      try {
        n = writeSync(this.fd, data, done, data.byteLength - done, position);
      } catch (err) {
        throw nodeFsError('write', `${this.path} at 0x${position.toString(16)}`, err);
      }
      if (n === 0) throw new CrError(`${this.path}: only ${done} of ${data.byteLength} bytes writable at 0x${address.toString(16)}`);
      done += n;
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}

/** A ProcMem for writing, opened at its first use, if there is one. */
class LazyProcMem {
  private mem: ProcMem | undefined;

  constructor(private readonly pid: number) {}

  get(): ProcMem {
    return (this.mem ??= new ProcMem(this.pid, 'r+'));
  }

  close(): void {
    this.mem?.close();
  }
}
