import { PAGE_SIZE } from '@cr/core';
import type { MmRecord, VmaRecord } from '@cr/plugin-mm';
import { CrCommand } from '../../base-command.js';
import { imageDirArg } from '../../image/image-arg.js';
import { readSoundImage, savedOfType } from '../../image/read-image.js';
import { renderTable } from '../../table.js';

/** A mapping with the number of its pages whose contents the image holds. */
interface MappingView {
  start: string;
  end: string;
  pages: number;
  savedPages: number;
  prot: string;
  kind: VmaRecord['kind'];
  name?: string;
  path?: string;
  offset?: string;
}

export default class InspectMems extends CrCommand {
  static override summary = "Show each saved process's memory mappings, with the pages saved.";
  static override description =
    'For every saved address space (mm record): each mapping with its addresses, size in pages, protection (r, w, x; p private or s shared), kind, the file or name it maps, and how many of its pages the image holds the contents of (only present pages are saved; a file mapping that was never written is read from the file again).';
  static override examples = ['<%= config.bin %> inspect mems img', '<%= config.bin %> inspect mems img --json'];
  static override enableJsonFlag = true;
  static override args = imageDirArg;

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(InspectMems);
    await this.setUp(flags.config);
    const processes = savedOfType<MmRecord>(readSoundImage(args.dir, this.registry), 'mm').map(({ entry, record }) => ({ pid: Number(entry.attributes.pid ?? entry.id), mappings: mappingsOf(record) }));
    if (!this.jsonEnabled()) {
      for (const { pid, mappings } of processes) {
        const saved = mappings.reduce((n, m) => n + m.savedPages, 0);
        const total = mappings.reduce((n, m) => n + m.pages, 0);
        this.log(`PID ${pid}: ${mappings.length} mappings, ${total} pages (${kib(total)} KiB), ${saved} saved (${kib(saved)} KiB)`);
        this.log(renderTable(['START', 'END', 'PAGES', 'SAVED', 'PROT', 'KIND', 'MAPS'], mappings.map((m) => [m.start, m.end, m.pages, m.savedPages, m.prot, m.kind, describeTarget(m)])));
      }
    }
    return { processes };
  }
}

/** Each mapping of the record, with the page runs restore writes into it counted (pre-copied ones and those left to a parent image too). */
export function mappingsOf(record: MmRecord): MappingView[] {
  const page = BigInt(PAGE_SIZE);
  const restored = [...record.pages, ...(record.precopied ?? []).flatMap((round) => round.runs.filter((r) => !r.stale)), ...(record.fromParent ?? [])];
  const runs = restored.map((r) => ({ start: BigInt(r.address), end: BigInt(r.address) + BigInt(r.pages) * page }));
  return record.vmas.map((vma) => {
    const start = BigInt(vma.start);
    const end = BigInt(vma.end);
    let saved = 0n;
    for (const run of runs) {
      const from = run.start > start ? run.start : start;
      const to = run.end < end ? run.end : end;
      if (to > from) saved += (to - from) / page;
    }
    const prot = `${vma.prot & 1 ? 'r' : '-'}${vma.prot & 2 ? 'w' : '-'}${vma.prot & 4 ? 'x' : '-'}${vma.shared ? 's' : 'p'}`;
    return {
      start: vma.start,
      end: vma.end,
      pages: Number((end - start) / page),
      savedPages: Number(saved),
      prot,
      kind: vma.kind,
      ...(vma.name !== undefined ? { name: vma.name } : {}),
      ...(vma.path !== undefined ? { path: vma.path } : {}),
      ...(vma.offset !== undefined ? { offset: vma.offset } : {}),
    };
  });
}

function describeTarget(m: MappingView): string {
  if (m.path) return m.offset && m.offset !== '0x0' ? `${m.path} @ ${m.offset}` : m.path;
  return m.name ?? '';
}

function kib(pages: number): number {
  return (pages * PAGE_SIZE) / 1024;
}
