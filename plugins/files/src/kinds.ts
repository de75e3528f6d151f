import { statSync, type BigIntStats } from 'node:fs';

const DELETED = ' (deleted)';
/** Character devices that are terminals: /dev/tty*, /dev/pts/*, /dev/console, /dev/ptmx. */
const TTY_MAJORS = new Set([4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);

/** What kind of thing an open descriptor is, by its /proc/PID/fd link and a stat of it. */
export type FdKind =
  | { kind: 'file' | 'directory' | 'device'; path: string; st: BigIntStats }
  | { kind: 'deleted'; path: string; st: BigIntStats }
  | { kind: 'external'; what: string };

/**
 * Regular files, directories and devices are reopened by path; a regular file deleted while open
 * is recreated from its saved contents; everything else (pipes, sockets, terminals, event fds …)
 * is "external": only a process's stdio can be, and it is given again at restore.
 */
export function kindOf(pid: number, fd: number, link: string): FdKind {
  if (!link.startsWith('/')) return { kind: 'external', what: describeLink(link) };
  const st = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
  if (link.endsWith(DELETED) && st.nlink === 0n) {
    if (st.isFile()) return { kind: 'deleted', path: link.slice(0, -DELETED.length), st };
    return { kind: 'external', what: `deleted ${link}` };
  }
  if (st.isFile()) return { kind: 'file', path: link, st };
  if (st.isDirectory()) return { kind: 'directory', path: link, st };
  if (st.isCharacterDevice() && !TTY_MAJORS.has(Number(st.rdev >> 8n) & 0xfff)) return { kind: 'device', path: link, st };
  if (st.isCharacterDevice()) return { kind: 'external', what: `the terminal ${link}` };
  if (st.isFIFO()) return { kind: 'external', what: `the named pipe ${link}` };
  return { kind: 'external', what: link };
}

function describeLink(link: string): string {
  if (link.startsWith('pipe:')) return `a pipe (${link})`;
  if (link.startsWith('socket:')) return `a socket (${link})`;
  if (link.startsWith('anon_inode:')) return `an ${link.slice('anon_inode:'.length).replace(/^\[|\]$/g, '')} (${link})`;
  return link;
}
