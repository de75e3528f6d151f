import { O_RDONLY } from 'node:constants';
import { closeSync, fstatSync, openSync, statSync, type BigIntStats } from 'node:fs';
import { Kernel, PAGE_SIZE, TargetError, UnsupportedError, aioRingHeader, readRegions, type PageRun, type RemoteTask, type Mapping, type SaveContext, type Vma, procDir } from '@cr/core';
import type { MmRecord, VmaRecord } from './record.js';
import { classify, isDeleted, withoutDeleted } from './classify.js';
import { withoutZeroPages, type SourceRun } from './zero-pages.js';
import { MemoryPreCopy, type Settled } from './pre-copy.js';
import { runsOf, spansOf, subtract } from './page-spans.js';
import { ParentPages } from './parent-pages.js';

const hex = (v: bigint | number) => `0x${BigInt(v).toString(16)}`;
/** The VmFlags code of a mapping registered for userfaultfd write-protection. */
const UFFD_WP_FLAG = 'uw';

/**
 * The address space of a stopped process: every mapping, the mm bounds (code, data, brk, stack,
 * arguments, environment, auxv, exe), and the contents of the pages that exist nowhere else,
 * streamed into the "pages" blob without being held in memory.
 */
export async function saveAddressSpace(kernel: Kernel, task: RemoteTask, ctx: SaveContext): Promise<MmRecord> {
  const { pid } = task;
  const preCopy = ctx.preCopy instanceof MemoryPreCopy ? ctx.preCopy : undefined;
  // Read once: smaps and the page-table scans cost time in proportion to the process's size, all
  // of it frozen, and the pre-copy's settling needs the same mappings and present pages.
  const mappings = kernel.vmas(pid).map((vma) => ({ vma, kind: classify(vma, pid) }));
  // Each mapping's pages worth saving, in one pass over the process's pagemap: the present pages of
  // anonymous memory; of a private file mapping, the copies the program wrote (the rest is the file's).
  const withPages = mappings.filter(({ vma, kind }) => kind === 'anon' || ((kind === 'file' || kind === 'shmem') && !vma.shared));
  const found = kernel.pageRunsOf(pid, withPages.map(({ vma, kind }) => ({ start: vma.start, end: vma.end, selection: kind === 'anon' ? ('present' as const) : ('private-copies' as const) })));
  const pagesOf = new Map(withPages.map(({ vma }, i) => [vma, found[i]!]));
  const present = new Map(mappings.filter((m) => m.kind === 'anon').map(({ vma }) => [vma, pagesOf.get(vma)!]));
  const settled = preCopy ? preCopy.settle(spansOf([...present.values()].flat()), [...present.keys()]) : undefined;
  const vmas: VmaRecord[] = [];
  const runs: SourceRun[] = [];
  const deleted = new DeletedFiles(ctx);
  let rings = 0;
  for (const { vma, kind } of mappings) {
    if (kind === undefined) continue;
    const where = mappingName(pid, vma);
    if (typeof kind === 'object') throw new UnsupportedError(unsupportedMapping(pid, vma, kind));
    const described = describe(pid, preCopy?.protects(vma.start, vma.end) ? { ...vma, flags: vma.flags.filter((f) => f !== UFFD_WP_FLAG) } : vma, kind, where);
    if (kind === 'file' && isDeleted(vma.path)) described.deleted = await deleted.indexOf(mapFilesPath(pid, vma), described.path!, `${where}, of the deleted file ${described.path}`);
    if (kind === 'aio') described.aio = await saveAioRing(task, vma, rings++, ctx, where);
    vmas.push(described);
    if (kind === 'anon') runs.push(...notPreCopied(present.get(vma)!, settled).map((r) => ({ ...r, zeroFree: true })));
    // A private copy of a file page that the program zeroed must be written back over the file's.
    if ((kind === 'file' || kind === 'shmem') && !vma.shared) runs.push(...pagesOf.get(vma)!.map((r) => ({ ...r, zeroFree: false })));
  }
  const saved: PageRun[] = [];
  const pages = runs.reduce((n, r) => n + r.pages, 0);
  ctx.log.debug({ mappings: vmas.length, pages }, `${vmas.length} mapping(s), ${pages} page(s) to read (all-zero anonymous pages are left out)`);
  const parent = ctx.parent ? new ParentPages(ctx.parent) : undefined;
  const unchanged = parent ? { same: (address: bigint, page: Uint8Array) => parent.same(address, page), reused: [] as PageRun[] } : undefined;
  try {
    await ctx.writeBlob('pages', withoutZeroPages(kernel.memory.read(pid, runs, { stopped: mappings.map(({ vma }) => vma) }), runs, saved, unchanged), { expectedSize: pages * PAGE_SIZE });
  } finally {
    parent?.close();
  }
  const bounds = kernel.procfs.mmBounds(pid);
  const exePath = kernel.procfs.link(pid, 'exe');
  const exe = isDeleted(exePath)
    ? { path: withoutDeleted(exePath), deleted: await deleted.indexOf(`${procDir(pid)}/exe`, withoutDeleted(exePath), `PID ${pid}: its deleted executable ${withoutDeleted(exePath)}`) }
    : { path: exePath };
  return {
    vmas,
    bounds: {
      startCode: hex(bounds.startCode),
      endCode: hex(bounds.endCode),
      startData: hex(bounds.startData),
      endData: hex(bounds.endData),
      startBrk: hex(bounds.startBrk),
      brk: hex(task.brk(0n)),
      startStack: hex(bounds.startStack),
      argStart: hex(bounds.argStart),
      argEnd: hex(bounds.argEnd),
      envStart: hex(bounds.envStart),
      envEnd: hex(bounds.envEnd),
    },
    auxv: kernel.procfs.readBytes(pid, 'auxv').toString('base64'),
    exe: { ...exe, file: identity(`${procDir(pid)}/exe`, `PID ${pid}: its executable ${exePath}`) },
    ...(deleted.files.length > 0 ? { deletedFiles: deleted.files } : {}),
    pages: saved.map((r) => ({ address: hex(r.address), pages: r.pages })),
    ...(settled ? { precopied: settled.precopied } : {}),
    ...(unchanged || settled?.fromParent.length ? { fromParent: [...(unchanged?.reused ?? []), ...runsOf(settled?.fromParent ?? [])].map((r) => ({ address: hex(r.address), pages: r.pages })) } : {}),
  };
}

/** The pages of `present` (runs within one mapping) that the pre-copy does not hold as they are now. */
function notPreCopied(present: PageRun[], settled: Settled | undefined): PageRun[] {
  return settled ? runsOf(subtract(spansOf(present), settled.covered)) : present;
}

const mappingName = (pid: number, vma: Mapping) => `PID ${pid}: mapping ${hex(vma.start)}-${hex(vma.end)}`;
const unsupportedMapping = (pid: number, vma: Mapping, kind: { unsupported: string }) => `${mappingName(pid, vma)} is a ${kind.unsupported}, which cr cannot checkpoint yet`;

/** Every mapping of `pid` that cr cannot checkpoint, each named. */
export function mappingRefusals(kernel: Kernel, pid: number): string[] {
  return kernel.mappings(pid).flatMap((vma) => {
    const kind = classify(vma, pid);
    return typeof kind === 'object' ? [unsupportedMapping(pid, vma, kind)] : [];
  });
}

function describe(pid: number, vma: Vma, kind: VmaRecord['kind'], where: string): VmaRecord {
  const record: VmaRecord = { start: hex(vma.start), end: hex(vma.end), prot: vma.prot, shared: vma.shared, kind, flags: vma.flags };
  if (vma.path.startsWith('[') && kind === 'anon') record.name = vma.path;
  if (kind === 'sysv-shm') record.shmid = vma.inode;
  if (kind === 'shmem') {
    record.path = vma.path;
    record.offset = hex(vma.offset);
    record.shmem = vma.inode;
  }
  if (kind === 'file' && isDeleted(vma.path)) {
    record.path = withoutDeleted(vma.path);
    record.offset = hex(vma.offset);
  } else if (kind === 'file') {
    const mapped = mapFilesPath(pid, vma);
    const onDisk = statOrUndefined(vma.path);
    const inMemory = statSync(mapped, { bigint: true });
    if (!onDisk || onDisk.ino !== inMemory.ino || onDisk.dev !== inMemory.dev) {
      throw new TargetError(`${where} maps ${vma.path}, but that path now holds another file (replaced since it was mapped); restart the program first`);
    }
    record.path = vma.path;
    record.offset = hex(vma.offset);
    record.file = identityOf(inMemory);
  }
  return record;
}

/** The bytes of an AIO context's ring, into the blob "aio-N"; returns N. Requests still in flight are not seen, as CRIU does not see them. */
async function saveAioRing(task: RemoteTask, vma: Mapping, index: number, ctx: SaveContext, where: string): Promise<number> {
  const ring = task.read(vma.start, Number(vma.end - vma.start));
  if (!aioRingHeader(ring).sane) throw new UnsupportedError(`${where} is an AIO ring whose header is not one the kernel made, which cr cannot restore`);
  await ctx.writeBlob(`aio-${index}`, ring);
  return index;
}

/** What opens the file a mapping maps, even one deleted since (/proc/PID/map_files). */
const mapFilesPath = (pid: number, vma: Mapping) => `${procDir(pid)}/map_files/${vma.start.toString(16)}-${vma.end.toString(16)}`;

/**
 * The deleted files a process maps or runs, each saved once (by device and inode, however many
 * mappings it has) into the blob "deleted-N", N its place in the list.
 */
class DeletedFiles {
  readonly files: NonNullable<MmRecord['deletedFiles']> = [];
  private readonly byInode = new Map<string, number>();

  constructor(private readonly ctx: SaveContext) {}

  /** The place of the deleted file that `opener` opens (a /proc path), saving its contents the first time; `path` is where it was. */
  async indexOf(opener: string, path: string, what: string): Promise<number> {
    const fd = openSync(opener, O_RDONLY);
    try {
      const st = fstatSync(fd, { bigint: true });
      if (!st.isFile()) throw new UnsupportedError(`${what} is not a regular file, which cr cannot make again`);
      const key = `${st.dev}:${st.ino}`;
      const known = this.byInode.get(key);
      if (known !== undefined) return known;
      const index = this.files.length;
      this.byInode.set(key, index);
      this.files.push({ path, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size) });
      await this.ctx.writeBlob(`deleted-${index}`, readRegions(fd, [{ position: 0, length: Number(st.size) }], what), { expectedSize: Number(st.size) });
      return index;
    } finally {
      closeSync(fd);
    }
  }
}

function statOrUndefined(path: string) {
  try {
    return statSync(path, { bigint: true });
  } catch {
    return undefined;
  }
}

/** Size and modification time: what restore compares to be sure the same file is mapped again. */
export function identity(path: string, what: string): { size: number; mtimeNs: string } {
  const st = statOrUndefined(path);
  if (!st) throw new TargetError(`${what} cannot be examined: ${path} is gone`);
  return identityOf(st);
}

function identityOf(st: BigIntStats): { size: number; mtimeNs: string } {
  return { size: Number(st.size), mtimeNs: String(st.mtimeNs) };
}
