import { closeSync, openSync, readSync } from 'node:fs';
import { procDir } from './proc-dir.js';
import { nodeFsError } from './sysctl.js';

/** One mapping of an address space, as /proc/PID/smaps shows it. */
export interface Vma {
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
  /** The two-letter VmFlags codes: "rd", "gd" (grows down), "dd" (MADV_DONTDUMP) … */
  flags: string[];
}

const HEADER = /^([0-9a-f]+)-([0-9a-f]+) ([r-])([w-])([x-])([ps]) ([0-9a-f]+) ([0-9a-f]+:[0-9a-f]+) (\d+)\s*(.*)$/;

/**
 * The mappings of `pid`, in address order, with their VmFlags; from `maps` without them (flags
 * empty), which is cheaper: smaps walks the page tables of every mapping to count its pages.
 */
export function readVmas(pid: number, source: 'smaps' | 'maps' = 'smaps'): Vma[] {
  const path = `${procDir(pid)}/${source}`;
  let text: string;
  try {
    text = readProcText(path);
  } catch (err) {
    throw nodeFsError('read', path, err);
  }
  const vmas: Vma[] = [];
  for (const line of text.split('\n')) {
    const m = HEADER.exec(line);
    if (m) {
      vmas.push({
        start: BigInt(`0x${m[1]}`),
        end: BigInt(`0x${m[2]}`),
        prot: (m[3] === 'r' ? 1 : 0) | (m[4] === 'w' ? 2 : 0) | (m[5] === 'x' ? 4 : 0),
        shared: m[6] === 's',
        offset: BigInt(`0x${m[7]}`),
        device: m[8]!,
        inode: Number(m[9]),
        path: m[10]!,
        flags: [],
      });
    } else if (line.startsWith('VmFlags:') && vmas.length > 0) {
      vmas[vmas.length - 1]!.flags = line.slice(8).trim().split(/\s+/);
    }
  }
  return vmas;
}

/** smaps and maps are generated as they are read; readFileSync's size guess from stat (0) is fine for them. */
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
