import { closeSync, openSync, readSync } from 'node:fs';
import { ImageError, PAGE_SIZE, type ParentObject } from '@cr/core';
import type { MmRecord } from './record.js';

const PAGE = BigInt(PAGE_SIZE);
/** How much of a parent's blob is read at once: pages are compared in address order, mostly in blob order too. */
const WINDOW = 1 << 20;

/** Where the contents of a span of pages are in an image: a blob at an offset, or the image's parent. */
interface PageSource {
  start: number;
  end: number;
  blob?: string;
  offset: number;
}

/**
 * Where each restored page of a memory record is: the pages of the "pages" blob, the pages of
 * pre-copy blobs that are not stale, and (blob undefined) those left to the image's parent;
 * sorted by address.
 */
export function pageSources(record: MmRecord): PageSource[] {
  const sources: PageSource[] = [];
  const add = (blob: string | undefined, runs: readonly { address: string; pages: number; stale?: true }[]) => {
    let offset = 0;
    for (const run of runs) {
      const start = Number(BigInt(run.address) / PAGE);
      if (!run.stale) sources.push({ start, end: start + run.pages, ...(blob === undefined ? {} : { blob }), offset });
      offset += run.pages * PAGE_SIZE;
    }
  };
  add('pages', record.pages);
  for (const round of record.precopied ?? []) add(round.blob, round.runs);
  add(undefined, record.fromParent ?? []);
  return sources.sort((a, b) => a.start - b.start);
}

/**
 * The pages of a process as its image in the parent chain holds them, to tell which pages did not
 * change since (`cr checkpoint --parent`): each page is compared with its copy there, read in
 * place from the parent's blob files (a parent is stored uncompressed), a window at a time.
 */
export class ParentPages {
  private readonly sources: PageSource[];
  private readonly files = new Map<string, number>();
  private window: { blob: string; offset: number; bytes: Buffer; length: number } | undefined;
  private grandparent: ParentPages | undefined | null = null;

  constructor(private readonly parent: ParentObject) {
    this.sources = pageSources(parent.record as MmRecord);
  }

  /** Whether the parent chain holds the page at `address` with exactly these bytes. */
  same(address: bigint, page: Uint8Array): boolean {
    const number = Number(address / PAGE);
    const source = this.sourceOf(number);
    if (!source) return false;
    if (source.blob === undefined) return this.grand()?.same(address, page) ?? false;
    const held = this.read(source.blob, source.offset + (number - source.start) * PAGE_SIZE);
    return Buffer.compare(held, page) === 0;
  }

  close(): void {
    for (const fd of this.files.values()) closeSync(fd);
    this.files.clear();
    if (this.grandparent) this.grandparent.close();
  }

  private grand(): ParentPages | undefined {
    if (this.grandparent === null) {
      const object = this.parent.parent();
      this.grandparent = object ? new ParentPages(object) : undefined;
    }
    return this.grandparent;
  }

  private sourceOf(page: number): PageSource | undefined {
    let lo = 0;
    let hi = this.sources.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.sources[mid]!.end <= page) lo = mid + 1;
      else hi = mid;
    }
    const source = this.sources[lo];
    return source && source.start <= page ? source : undefined;
  }

  /** The page at `offset` of blob `blob`, from the window, which moves there if it must. */
  private read(blob: string, offset: number): Buffer {
    const w = this.window;
    if (!w || w.blob !== blob || offset < w.offset || offset + PAGE_SIZE > w.offset + w.length) {
      const bytes = w?.bytes ?? Buffer.alloc(WINDOW);
      const length = readSync(this.fileOf(blob), bytes, 0, WINDOW, offset);
      if (length < PAGE_SIZE) throw new ImageError(`the parent image ${this.parent.imageDir} has a "${blob}" blob shorter than its record says`);
      this.window = { blob, offset, bytes, length };
    }
    const at = offset - this.window!.offset;
    return this.window!.bytes.subarray(at, at + PAGE_SIZE);
  }

  private fileOf(blob: string): number {
    let fd = this.files.get(blob);
    if (fd === undefined) {
      fd = openSync(this.parent.blobFile(blob), 'r');
      this.files.set(blob, fd);
    }
    return fd;
  }
}
