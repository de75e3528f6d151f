import { closeSync, openSync, readSync } from 'node:fs';
import { procDir } from './proc-dir.js';
import { nodeFsError } from './sysctl.js';

/** One mapping of an address space, as /proc/PID/maps shows it. */
export interface Mapping {
  start: bigint;
  end: bigint;
  /** PROT_READ | PROT_WRITE | PROT_EXEC bits. */
  prot: number;
  shared: boolean;
  /** File offset of `start`, in bytes. */
  offset: bigint;
  /** Device of the mapped file, "major:minor" in hex, and its inode (0 for anonymous memory). */
  device: string;
  inode: number;
  /** The file's path, a "[name]" of a special mapping, or "" for anonymous memory. */
  path: string;
}

/** One mapping of an address space, as /proc/PID/smaps shows it. */
export interface Vma extends Mapping {
  /** The two-letter VmFlags codes: "rd", "gd" (grows down), "dd" (MADV_DONTDUMP) … */
  flags: string[];
  /** Bytes of its resident pages that other mappings map too (Shared_Clean + Shared_Dirty): a fork's copy-on-write pages, a file's pages. */
  sharedResident: number;
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/;

/** The mappings of `pid`, in address order, with their VmFlags. */
export function readVmas(pid: number): Vma[] {
  const vmas: Vma[] = [];
  for (const line of readProcLines(pid, 'smaps')) {
    const mapping = parseMapping(line);
    const last = vmas[vmas.length - 1];
    if (mapping) vmas.push({ ...mapping, flags: [], sharedResident: 0 });
    else if (!last) continue;
    else if (line.startsWith('VmFlags:')) last.flags = line.slice(8).trim().split(/\s+/);
    else if (line.startsWith('Shared_Clean:') || line.startsWith('Shared_Dirty:')) last.sharedResident += kib(line);
  }
  return vmas;
}

/**
 * The mappings of `pid` without their VmFlags: /proc/PID/maps, which unlike smaps does not walk
 * the page tables to count pages (about 12 ms for a GiB of memory), for callers that need only
 * where mappings are and what they map.
 */
export function readMappings(pid: number): Mapping[] {
  return readProcLines(pid, 'maps').flatMap((line) => parseMapping(line) ?? []);
}

/** The size of an smaps line such as "Shared_Dirty:      12 kB", in bytes. */
function kib(line: string): number {
  return Number(/(\d+) kB$/.exec(line)?.[1] ?? 0) * 1024;
}

function parseMapping(line: string): Mapping | undefined {
  const m = HEADER.exec(line);
  if (!m) return undefined;
  return {
    start: BigInt(`0x${m[1]}`),
    end: BigInt(`0x${m[2]}`),
    prot: (m[3] === 'r' ? 1 : 0) | (m[4] === 'w' ? 2 : 0) | (m[5] === 'x' ? 4 : 0),
    shared: m[6] === 's',
    offset: BigInt(`0x${m[7]}`),
    device: m[8]!,
    inode: Number(m[9]),
    path: m[10]!,
  };
}

function readProcLines(pid: number, file: 'maps' | 'smaps'): string[] {
  const path = `${procDir(pid)}/${file}`;
  try {
    return readProcText(path).split('\n');
  } catch (err) {
    throw nodeFsError('read', path, err);
  }
}

/** maps and smaps are generated as they are read, and stat reports them empty: read until EOF. */
function readProcText(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const chunks: Buffer[] = [];
    for (;;) {
      const buf = Buffer.alloc(1 << 16);
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      chunks.push(buf.subarray(0, n));
    }
    return Buffer.concat(chunks).toString('utf8');
  } finally {
    closeSync(fd);
  }
}
