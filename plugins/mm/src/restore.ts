import { O_RDONLY, O_RDWR, O_WRONLY } from 'node:constants';
import { closeSync, fstatSync, openSync, statSync } from 'node:fs';
import {
  Kernel,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_GROWSDOWN,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  PROT_WRITE,
  SHM_RDONLY,
  SHM_REMAP,
  TargetError,
  UnsupportedError,
  makeDeletedFile,
  rebuildAioRing,
  type RemoteTask,
  type RestoreContext,
} from '@cr/core';
import { SHM_SEGMENTS } from '@cr/sysvipc-base';
import { SHMEM } from '@cr/plugin-shmem';
import type { MmRecord, VmaRecord } from './record.js';
import { restoreBlobPages, type BlobRun } from './blob-pages.js';
import { restoreFromParents } from './parent-restore.js';
import { spansOf } from './page-spans.js';

/** The end of the user address space (x86_64, 4-level page tables). */
export const TASK_SIZE = 0x7ffffffff000n;
export const SPECIAL_KINDS: readonly VmaRecord['kind'][] = ['vvar', 'vvar_vclock', 'vdso'];
/** madvise(2) advice for the VmFlags codes a program can set itself. */
const ADVICE: Record<string, number> = { rr: 1, sr: 2, dc: 10, mg: 12, hg: 14, nh: 15, dd: 16, wf: 18 };

const big = (v: string) => BigInt(v);
const blobRun = (r: { address: string; pages: number; stale?: true }): BlobRun => ({ address: big(r.address), pages: r.pages, ...(r.stale ? { stale: r.stale } : {}) });

const nsToIso = (ns: bigint) => new Date(Number(ns / 1_000_000n)).toISOString();

/**
 * Checks before anything is changed that every mapped file, and the executable, is still the file
 * the program had: same size and modification time. A different libc would crash the program.
 */
export function checkMappedFiles(record: MmRecord, key: string): void {
  // Deleted files come from the image.
  const files = new Map<string, { size: number; mtimeNs: string }>(record.exe.deleted === undefined ? [[record.exe.path, record.exe.file]] : []);
  for (const vma of record.vmas) if (vma.kind === 'file' && vma.deleted === undefined) files.set(vma.path!, vma.file!);
  for (const [path, saved] of files) {
    let fd: number;
    try {
      fd = openSync(path, O_RDONLY);
    } catch {
      throw new TargetError(`cannot restore ${key}: ${path}, which the program had mapped, is gone`);
    }
    try {
      const st = fstatSync(fd, { bigint: true });
      const change =
        Number(st.size) !== saved.size
          ? `its size went from ${saved.size} to ${st.size} bytes`
          : String(st.mtimeNs) !== saved.mtimeNs
            ? `it was modified (at ${nsToIso(st.mtimeNs)}, not ${nsToIso(BigInt(saved.mtimeNs))})`
            : undefined;
      if (change) {
        throw new TargetError(`cannot restore ${key}: ${path} changed since the checkpoint: ${change}; the program must find the same file it had mapped`);
      }
    } finally {
      closeSync(fd);
    }
  }
}

/**
 * Turns the seed's address space into the saved one: everything of the seed is unmapped but its
 * vdso and vvar, which are moved to the saved addresses (the program calls into them there); every
 * mapping is recreated at its address with its protection and advice; the saved pages are put
 * back (restoreBlobPages: the process reads them from the image itself); and the mm bounds, auxv and exe link are set with one PR_SET_MM_MAP.
 * The calls that make the mappings, and those that advise them, go to the task in one batch each (RemoteTask.together).
 */
export async function restoreAddressSpace(kernel: Kernel, task: RemoteTask, record: MmRecord, ctx: RestoreContext): Promise<void> {
  moveSpecialMappings(kernel, task, record);
  const files = new OpenFiles(task);
  try {
    await files.makeDeleted(record, ctx);
    task.together(() => {
      files.openFor(record, ctx);
      for (const vma of record.vmas) mapOne(task, vma, files, ctx);
    });
    const blob = (name: string) => ({ name, stored: () => ctx.storedBlob(name), stream: () => ctx.readBlob(name) });
    await restoreBlobPages(kernel, task, blob('pages'), record.pages.map(blobRun), ctx.log);
    for (const round of record.precopied ?? []) await restoreBlobPages(kernel, task, blob(round.blob), round.runs.map(blobRun), ctx.log);
    await restoreFromParents(kernel, task, spansOf((record.fromParent ?? []).map(blobRun)), ctx);
    await rebuildAioRings(task, record, ctx);
    task.together(() => {
      // First: its scratch writes would send the calls held back before them.
      setMmFields(task, record, files);
      for (const vma of record.vmas) advise(task, vma);
      files.close();
    });
  } finally {
    files.close();
  }
}

function moveSpecialMappings(kernel: Kernel, task: RemoteTask, record: MmRecord): void {
  const current = kernel.mappings(task.pid).filter((v) => ['[vvar]', '[vvar_vclock]', '[vdso]'].includes(v.path));
  const saved = record.vmas.filter((v) => SPECIAL_KINDS.includes(v.kind));
  const names = (list: readonly string[]) => list.join(' ');
  const currentNames = current.map((v) => v.path.slice(1, -1));
  const savedNames = saved.map((v) => v.kind);
  const sizes = (a: readonly bigint[], b: readonly bigint[]) => a.length === b.length && a.every((v, i) => v === b[i]);
  if (
    names(currentNames) !== names(savedNames) ||
    !sizes(
      current.map((v) => v.end - v.start),
      saved.map((v) => big(v.end) - big(v.start)),
    )
  ) {
    throw new UnsupportedError(
      `the image's vdso layout (${savedNames.join(', ')}) differs from this kernel's (${currentNames.join(', ')}); restore on the kernel it was checkpointed on`,
    );
  }
  const blockStart = current[0]!.start;
  const blockEnd = current[current.length - 1]!.end;
  task.munmap(0n, blockStart);
  task.munmap(blockEnd, TASK_SIZE - blockEnd);

  const savedStart = big(saved[0]!.start);
  const savedEnd = big(saved[saved.length - 1]!.end);
  let from = current.map((v) => v.start);
  const overlaps = savedStart < blockEnd && blockStart < savedEnd;
  if (overlaps) {
    // mremap cannot move a mapping onto itself: go through a place that overlaps neither.
    const parking = savedStart > 1n << 40n ? 1n << 32n : 1n << 44n;
    from = moveBlock(task, current.map((v, i) => ({ from: from[i]!, length: v.end - v.start, to: parking + (v.start - blockStart) })));
  }
  moveBlock(task, saved.map((v, i) => ({ from: from[i]!, length: big(v.end) - big(v.start), to: big(v.start) })));
}

function moveBlock(task: RemoteTask, moves: readonly { from: bigint; length: bigint; to: bigint }[]): bigint[] {
  for (const m of moves) if (m.from !== m.to) task.mremapTo(m.from, m.length, m.to);
  return moves.map((m) => m.to);
}

/**
 * Files cr opened and handed to the task, one per path, for its file mappings and exe link; and
 * the deleted files it made again for them.
 */
export class OpenFiles {
  private readonly fds = new Map<string, { local: number; remote: number }>();
  /** cr's descriptor of each deleted file of the record, by its place in `deletedFiles`. */
  private deleted: number[] = [];
  constructor(private readonly task: RemoteTask) {}

  /** Makes the record's deleted files again (makeDeletedFile), with their contents from the image. */
  async makeDeleted(record: MmRecord, ctx: RestoreContext): Promise<void> {
    for (const [i, file] of (record.deletedFiles ?? []).entries()) {
      this.deleted.push(await makeDeletedFile(file, ctx.readBlob(`deleted-${i}`), `the memory of PID ${this.task.pid}`));
    }
  }

  /** The file a mapping maps: its path, a deleted file made again, or for shared memory, the object the shmem plugin restored. */
  pathOf(vma: VmaRecord, ctx: RestoreContext): string {
    if (vma.deleted !== undefined) return this.deletedPath(vma.deleted);
    if (vma.kind !== 'shmem') return vma.path!;
    const shmem = SHMEM.restored(ctx, vma.shmem!);
    if (!shmem) throw new TargetError(`cannot restore the memory of PID ${this.task.pid}: ${SHMEM.key(vma.shmem!)}, mapped at ${vma.start}, was not restored`);
    return shmem.path;
  }

  /** The executable the process is to have. */
  exePath(record: MmRecord): string {
    return record.exe.deleted === undefined ? record.exe.path : this.deletedPath(record.exe.deleted);
  }

  private deletedPath(index: number): string {
    const fd = this.deleted[index];
    if (fd === undefined) throw new Error(`internal error: deleted file ${index} was not made`);
    return `/proc/self/fd/${fd}`;
  }

  /** Hands over every file `record`'s mappings map, all in one round trip. */
  openFor(record: MmRecord, ctx: RestoreContext): void {
    const wanted = new Map<string, { path: string; writable: boolean }>();
    for (const vma of record.vmas) {
      if (vma.kind !== 'file' && vma.kind !== 'shmem') continue;
      const file = { path: this.pathOf(vma, ctx), writable: mapsWritable(vma) };
      const key = keyOf(file.path, file.writable);
      if (!this.fds.has(key)) wanted.set(key, file);
    }
    this.pull([...wanted.values()]);
  }

  remoteFd(path: string, writable: boolean): number {
    const key = keyOf(path, writable);
    if (!this.fds.has(key)) this.pull([{ path, writable }]);
    return this.fds.get(key)!.remote;
  }

  private pull(files: readonly { path: string; writable: boolean }[]): void {
    const locals: number[] = [];
    try {
      for (const { path, writable } of files) {
        try {
          locals.push(openSync(path, writable ? O_RDWR : O_RDONLY));
        } catch (err) {
          const code = (err as NodeJS.ErrnoException).code;
          throw new TargetError(`cannot restore the memory of PID ${this.task.pid}: ${path}, which it had mapped${writable ? ' shared and writable' : ''}, cannot be opened again (${code})`);
        }
      }
      const remotes = this.task.pullFdsCloseOnExec(locals);
      files.forEach(({ path, writable }, i) => this.fds.set(keyOf(path, writable), { local: locals[i]!, remote: remotes[i]! }));
    } catch (err) {
      for (const fd of locals) closeSync(fd);
      throw err;
    }
  }

  close(): void {
    for (const { local, remote } of this.fds.values()) {
      closeSync(local);
      try {
        this.task.close(remote);
      } catch {
        // The task is being given up on anyway.
      }
    }
    this.fds.clear();
    for (const fd of this.deleted) closeSync(fd);
    this.deleted = [];
  }
}

export function mapOne(task: RemoteTask, vma: VmaRecord, files: OpenFiles, ctx: RestoreContext): void {
  const start = big(vma.start);
  const length = big(vma.end) - start;
  const extra = (vma.flags.includes('gd') ? MAP_GROWSDOWN : 0) | (vma.flags.includes('nr') ? MAP_NORESERVE : 0);
  switch (vma.kind) {
    case 'anon':
      task.mmap(start, length, createdProt(vma), (vma.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_ANONYMOUS | MAP_FIXED | extra);
      restoreProt(task, vma, start, length);
      return;
    case 'file':
    case 'shmem': {
      const fd = files.remoteFd(files.pathOf(vma, ctx), mapsWritable(vma));
      task.mmap(start, length, createdProt(vma), (vma.shared ? MAP_SHARED : MAP_PRIVATE) | MAP_FIXED | extra, fd, big(vma.offset!));
      restoreProt(task, vma, start, length);
      return;
    }
    case 'aio':
      // Made by io_setup and moved here once the rest is mapped (rebuildAioRings).
      return;
    case 'sysv-shm': {
      // The segment as restored, or the live one an external reference was found as (--map-external).
      const shmid = SHM_SEGMENTS.restored(ctx, vma.shmid!) ?? vma.shmid!;
      task.shmat(shmid, start, length, SHM_REMAP | (vma.prot & PROT_WRITE ? 0 : SHM_RDONLY));
      return;
    }
    default:
      return;
  }
}

/** The process's AIO contexts, each made again with its ring where it was (rebuildAioRing). */
export async function rebuildAioRings(task: RemoteTask, record: MmRecord, ctx: RestoreContext): Promise<void> {
  const rings = record.vmas.filter((vma) => vma.aio !== undefined);
  if (rings.length === 0) return;
  const devNull = openSync('/dev/null', O_WRONLY);
  try {
    for (const vma of rings) {
      const ring = Buffer.alloc(Number(big(vma.end) - big(vma.start)));
      await ctx.readBlobInto(`aio-${vma.aio}`, ring);
      rebuildAioRing(task, big(vma.start), ring, devNull);
    }
  } finally {
    closeSync(devNull);
  }
}

const keyOf = (path: string, writable: boolean) => `${writable ? 'rw' : 'r'}:${path}`;

/**
 * Whether a mapping's file is opened writable: only where the program's mapping could be made
 * writable, as a memfd sealed against writing refuses the seal while a mapping may write.
 */
const mapsWritable = (vma: VmaRecord) => vma.shared && vma.flags.includes('mw');

/**
 * A private mapping that was writable once and made read-only later (a library's RELRO part) keeps
 * the kernel's accounting flag ("ac" in VmFlags), which also keeps it from merging with its
 * neighbours: it is created writable, as the program's was, and then given its protection.
 */
const accountedReadOnly = (vma: VmaRecord) => !vma.shared && vma.flags.includes('ac') && (vma.prot & PROT_WRITE) === 0;
const createdProt = (vma: VmaRecord) => (accountedReadOnly(vma) ? vma.prot | PROT_WRITE : vma.prot);

function restoreProt(task: RemoteTask, vma: VmaRecord, start: bigint, length: bigint): void {
  if (accountedReadOnly(vma)) task.mprotect(start, length, vma.prot);
}

export function advise(task: RemoteTask, vma: VmaRecord): void {
  const start = big(vma.start);
  const length = big(vma.end) - start;
  for (const flag of vma.flags) {
    const advice = ADVICE[flag];
    if (advice !== undefined) task.madvise(start, length, advice);
  }
  if (vma.flags.includes('lo')) task.mlock(start, length);
}

/**
 * Whether two paths are one file. The kernel refuses to switch the exe link to a file while the
 * old one is still mapped (EBUSY), which is the case when the program is the seed's own launcher
 * (`sleep`): then the link is already right.
 */
function sameFile(a: string, b: string): boolean {
  const sa = statSync(a, { bigint: true });
  const sb = statSync(b, { bigint: true });
  return sa.dev === sb.dev && sa.ino === sb.ino;
}

/** The mm bounds, auxv and exe link, with one PR_SET_MM_MAP. */
export function setMmFields(task: RemoteTask, record: MmRecord, files: OpenFiles): void {
  const b = record.bounds;
  task.setMmMap({
    startCode: big(b.startCode),
    endCode: big(b.endCode),
    startData: big(b.startData),
    endData: big(b.endData),
    startBrk: big(b.startBrk),
    brk: big(b.brk),
    startStack: big(b.startStack),
    argStart: big(b.argStart),
    argEnd: big(b.argEnd),
    envStart: big(b.envStart),
    envEnd: big(b.envEnd),
    auxv: Buffer.from(record.auxv, 'base64'),
    exeFd: sameFile(`/proc/${task.pid}/exe`, files.exePath(record)) ? undefined : files.remoteFd(files.exePath(record), false),
  });
}
