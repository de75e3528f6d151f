import { PAGE_SIZE, blobProblems, type RecordCheckContext } from '@cr/core';
import { TASKS } from '@cr/plugin-tasks';
import { SHM_SEGMENTS } from '@cr/sysvipc-base';
import { SHMEM, missingShmem } from '@cr/plugin-shmem';
import type { MmRecord, VmaRecord } from './record.js';
import { SPECIAL_KINDS, TASK_SIZE } from './restore.js';

const PAGE = BigInt(PAGE_SIZE);
const aligned = (v: bigint) => v % PAGE === 0n;
/** Far more than the kernel keeps (mm->saved_auxv, a few hundred bytes); a longer one is no auxv. */
const MAX_AUXV = 4096;

/**
 * What restore relies on in an mm record, checked against the image before anything is changed:
 * it belongs to the process it hangs below; the mappings are page-aligned, inside the user
 * address space, in order and without overlaps, each with what its kind needs (a file, a segment
 * of the image) and shared exactly when its VmFlags say so; the saved pages lie in the private
 * mappings they were read from, without overlaps; the auxv is whole (type, value) pairs; and the
 * "pages" blob holds exactly those pages.
 */
export function mmRecordProblems(record: MmRecord, ctx: RecordCheckContext): string[] {
  const problems: string[] = [];
  if (!TASKS.isAmong(ctx.parents, ctx.id)) problems.push(`it is the memory of PID ${ctx.id} but does not hang below ${TASKS.key(ctx.id)}`);
  let previous: VmaRecord | undefined;
  for (const vma of record.vmas) {
    const where = `mapping ${vma.start}-${vma.end}`;
    const start = BigInt(vma.start);
    const end = BigInt(vma.end);
    if (!(start < end && end <= TASK_SIZE && aligned(start) && aligned(end))) problems.push(`${where} is not a page-aligned range of user addresses`);
    if (previous && BigInt(previous.end) > start) problems.push(`${where} overlaps or comes before mapping ${previous.start}-${previous.end}`);
    problems.push(...kindProblems(vma, where, ctx, record), ...sharingProblems(vma, where));
    previous = vma;
  }
  for (const kind of SPECIAL_KINDS) {
    if (record.vmas.filter((v) => v.kind === kind).length > 1) problems.push(`it has more than one ${kind} mapping`);
  }
  const auxv = Buffer.from(record.auxv, 'base64').length;
  if (auxv % 16 !== 0 || auxv > MAX_AUXV) problems.push(`its auxv is ${auxv} bytes, not whole (type, value) pairs of at most ${MAX_AUXV} bytes`);
  problems.push(...pageProblems(record));
  const bytes = (runs: readonly { pages: number }[]) => runs.reduce((sum, run) => sum + run.pages, 0) * PAGE_SIZE;
  if (record.exe.deleted !== undefined && !record.deletedFiles?.[record.exe.deleted]) problems.push(`its executable is deleted file ${record.exe.deleted}, which the record does not list`);
  const blobs: Record<string, number> = { pages: bytes(record.pages) };
  for (const [i, file] of (record.deletedFiles ?? []).entries()) blobs[`deleted-${i}`] = file.size;
  for (const vma of record.vmas) if (vma.aio !== undefined) blobs[`aio-${vma.aio}`] = Number(BigInt(vma.end) - BigInt(vma.start));
  for (const round of record.precopied ?? []) {
    if (Object.hasOwn(blobs, round.blob)) problems.push(`it lists the "${round.blob}" blob twice`);
    blobs[round.blob] = bytes(round.runs);
    for (const run of round.runs) if (!aligned(BigInt(run.address))) problems.push(`the pre-copied pages at ${run.address} are not page-aligned`);
  }
  return [...problems, ...blobProblems(ctx, blobs)];
}

/**
 * Whether a mapping is shared is told twice, and the two must agree: by /proc/PID/maps ("s") and by
 * VmFlags, where the kernel marks every shared mapping "ms", and "sh" only one whose file was open
 * for writing, "mw" too unless the file is sealed against writes. Restore opens the file of a
 * shared "mw" mapping for writing.
 */
function sharingProblems(vma: VmaRecord, where: string): string[] {
  const flag = (name: string) => vma.flags.includes(name);
  if (vma.shared !== flag('ms')) return [`${where} is ${vma.shared ? 'shared' : 'private'}, but its VmFlags ${flag('ms') ? 'have' : 'lack'} "ms"`];
  if (vma.shared && flag('mw') && !flag('sh')) return [`${where} is shared and its VmFlags have "mw" without "sh"`];
  return [];
}

function kindProblems(vma: VmaRecord, where: string, ctx: RecordCheckContext, record: MmRecord): string[] {
  switch (vma.kind) {
    case 'file':
      if (vma.path === undefined || !vma.path.startsWith('/') || vma.offset === undefined || (vma.file === undefined && vma.deleted === undefined)) {
        return [`${where} maps a file but lacks its absolute path, offset or identity`];
      }
      if (vma.deleted !== undefined && !record.deletedFiles?.[vma.deleted]) return [`${where} maps deleted file ${vma.deleted}, which the record does not list`];
      return aligned(BigInt(vma.offset)) ? [] : [`${where} maps ${vma.path} at offset ${vma.offset}, which is not page-aligned`];
    case 'aio':
      return vma.aio === undefined ? [`${where} is an AIO ring but does not name its blob`] : [];
    case 'sysv-shm':
      if (vma.shmid === undefined) return [`${where} attaches a SysV segment but lacks its shmid`];
      return SHM_SEGMENTS.inImage(ctx, vma.shmid) ? [] : [`${where} attaches shm id ${vma.shmid}, which the image neither holds nor refers to`];
    case 'shmem':
      if (vma.shmem === undefined || vma.offset === undefined) return [`${where} maps shared memory but lacks its shmem object or offset`];
      if (!aligned(BigInt(vma.offset))) return [`${where} maps ${SHMEM.key(vma.shmem)} at offset ${vma.offset}, which is not page-aligned`];
      return SHMEM.inImage(ctx, vma.shmem)?.saved ? [] : [`${where} maps ${missingShmem(vma.shmem)}`];
    default:
      return [];
  }
}

/**
 * Saved pages (pre-copied ones that are not stale too) come from anonymous and private file and
 * memfd mappings, one run within one mapping, and are restored from one place only.
 */
function pageProblems(record: MmRecord): string[] {
  const problems: string[] = [];
  const private_ = record.vmas.filter((v) => v.kind === 'anon' || ((v.kind === 'file' || v.kind === 'shmem') && !v.shared));
  const restored = [...record.pages, ...(record.precopied ?? []).flatMap((round) => round.runs.filter((r) => !r.stale)), ...(record.fromParent ?? [])];
  const runs = restored.map((r) => ({ start: BigInt(r.address), end: BigInt(r.address) + BigInt(r.pages) * PAGE, address: r.address }));
  for (const run of runs) {
    const home = private_.some((v) => BigInt(v.start) <= run.start && run.end <= BigInt(v.end));
    if (!aligned(run.start) || !home) problems.push(`the saved pages at ${run.address} do not lie page-aligned in one private mapping`);
  }
  const sorted = [...runs].sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i]!.start < sorted[i - 1]!.end) problems.push(`the saved pages at ${sorted[i]!.address} overlap those at ${sorted[i - 1]!.address}`);
  }
  return problems;
}
