import type { EpollTarget } from './record.js';

/** "tfd:        5 events:       19 data:                5  pos:0 ino:2c6 sdev:f": numbers in decimal, mask and data in hex. */
const TARGET_LINE = /^tfd:\s*(\d+)\s+events:\s*([0-9a-f]+)\s+data:\s*([0-9a-f]+)/;

/** The files an epoll instance watches, in the order /proc/PID/fdinfo lists them. */
export function epollTargets(fdinfo: string): EpollTarget[] {
  return fdinfo.split('\n').flatMap((line) => {
    const m = TARGET_LINE.exec(line);
    return m ? [{ fd: Number(m[1]), events: Number.parseInt(m[2]!, 16), data: String(BigInt(`0x${m[3]}`)) }] : [];
  });
}

/** How many items before `index` were added by the same number: kcmp's toff for the item. */
export function sameNumberBefore(targets: readonly EpollTarget[], index: number): number {
  return targets.slice(0, index).filter((t) => t.fd === targets[index]!.fd).length;
}
