/**
 * What an open descriptor is, as the kernel identifies it: the filesystem its file lives on
 * (statfs f_type), its file type (st_mode), whether its mount is one a path can reach
 * (/proc/PID/fdinfo mnt_id against the mount tables), and for a pidfd the PID fdinfo names.
 * The text of the /proc/PID/fd link only ever supplies the path to reopen and the name shown in
 * messages: a message queue at "/crq" is a message queue whatever file exists at /crq.
 */

/** statfs(2) f_type values, from linux/magic.h. */
export const FS_MAGIC = {
  ANON_INODE_FS: 0x09041934,
  SOCKFS: 0x534f434b,
  PIPEFS: 0x50495045,
  MQUEUE: 0x19800202,
  PIDFS: 0x50494446,
  SECRETMEM: 0x5345434d,
  NSFS: 0x6e736673,
  TMPFS: 0x01021994,
  HUGETLBFS: 0x958458f6,
  PROC: 0x9fa0,
  SYSFS: 0x62656572,
  CGROUP: 0x27e0eb,
  CGROUP2: 0x63677270,
  DEBUGFS: 0x64626720,
  TRACEFS: 0x74726163,
  SECURITYFS: 0x73636673,
  BPF_FS: 0xcafe4a11,
  CONFIGFS: 0x62656570,
  EFIVARFS: 0xde5e81e4,
  PSTORE: 0x6165676c,
  FUSECTL: 0x65735543,
  BINFMTFS: 0x42494e4d,
  SELINUX: 0xf97cff8c,
  SMACK: 0x43415d53,
  DMA_BUF: 0x444d4142,
} as const;

/**
 * Filesystems whose files are kernel interfaces rather than data: what such a file reads depends
 * on the kernel's state, not on an offset into contents, so reopening it by path does not give
 * the program back what it had.
 */
const INTERFACE_FILESYSTEMS = new Map<number, string>([
  [FS_MAGIC.PROC, 'procfs'],
  [FS_MAGIC.SYSFS, 'sysfs'],
  [FS_MAGIC.CGROUP, 'cgroupfs'],
  [FS_MAGIC.CGROUP2, 'cgroup2'],
  [FS_MAGIC.DEBUGFS, 'debugfs'],
  [FS_MAGIC.TRACEFS, 'tracefs'],
  [FS_MAGIC.SECURITYFS, 'securityfs'],
  [FS_MAGIC.BPF_FS, 'bpffs'],
  [FS_MAGIC.CONFIGFS, 'configfs'],
  [FS_MAGIC.EFIVARFS, 'efivarfs'],
  [FS_MAGIC.PSTORE, 'pstore'],
  [FS_MAGIC.FUSECTL, 'fusectl'],
  [FS_MAGIC.BINFMTFS, 'binfmt_misc'],
  [FS_MAGIC.SELINUX, 'selinuxfs'],
  [FS_MAGIC.SMACK, 'smackfs'],
  [FS_MAGIC.DMA_BUF, 'dmabuf'],
]);

/** Character devices that are terminals: /dev/tty*, /dev/pts/*, /dev/console, /dev/ptmx. */
const TTY_MAJORS = new Set([4, 5, 136, 137, 138, 139, 140, 141, 142, 143]);

/** The anonymous-inode objects by the name the kernel gives their inode (anon_inode:[NAME]). */
const ANON_INODE_NAMES: Readonly<Record<string, string>> = {
  eventfd: 'an eventfd',
  eventpoll: 'an epoll instance',
  signalfd: 'a signalfd',
  timerfd: 'a timerfd',
  inotify: 'an inotify instance',
  fanotify: 'a fanotify group',
  userfaultfd: 'a userfaultfd',
  io_uring: 'an io_uring instance',
  pidfd: 'a pidfd',
  perf_event: 'a perf event',
  'bpf-map': 'a BPF map',
  'bpf-prog': 'a BPF program',
  bpf_link: 'a BPF link',
};

const S_IFMT = 0o170000n;
const S_IFREG = 0o100000n;
const S_IFDIR = 0o040000n;
const S_IFCHR = 0o020000n;
const S_IFBLK = 0o060000n;
const S_IFIFO = 0o010000n;
const S_IFSOCK = 0o140000n;
const S_IFLNK = 0o120000n;
const DELETED = ' (deleted)';

/** The parts of a stat of /proc/PID/fd/N that tell an fd apart and that records keep. */
export interface FdStat {
  mode: bigint;
  nlink: bigint;
  uid: bigint;
  gid: bigint;
  rdev: bigint;
  size: bigint;
}

/** What the kernel says about one descriptor, gathered by Procfs.fds. */
export interface FdIdentity {
  /** The /proc/PID/fd/N link: a path (maybe ending " (deleted)"), or "pipe:[ino]", "anon_inode:[eventfd]" … */
  link: string;
  st: FdStat;
  /** statfs(2) f_type of the filesystem the file is on. */
  fsType: number;
  /** Whether its mount (fdinfo mnt_id) is in the process's or cr's mount table, so a path can reach it. */
  reachable: boolean;
  /** For a pidfd, the PID it refers to (fdinfo "Pid:"). */
  pidfdPid?: number;
}

/** Kinds the files plugin can open again by path, or recreate (a deleted regular file). */
export type ReopenableFdKind = 'file' | 'directory' | 'device' | 'deleted';

/** Kinds that are not a file a path leads to: each is a kernel object of its own. */
export type OpaqueFdKind =
  | 'terminal'
  | 'pipe'
  | 'fifo'
  | 'socket'
  | 'block-device'
  | 'mqueue'
  | 'anon-inode'
  | 'pidfd'
  | 'memfd'
  | 'secretmem'
  | 'namespace'
  | 'interface-file'
  | 'unreachable'
  | 'deleted-other'
  | 'other';

export type FdKind =
  | { kind: ReopenableFdKind; path: string; st: FdStat }
  /** `what` names it for a person: "a POSIX message queue (/crq)", "an eventfd (anon_inode:[eventfd])". */
  | { kind: OpaqueFdKind; what: string };

/** Classifies a descriptor by the kernel's identification of it (see the file comment). */
export function classifyFd(id: FdIdentity): FdKind {
  const { link, st, fsType } = id;
  const type = st.mode & S_IFMT;
  const opaque = (kind: OpaqueFdKind, what: string): FdKind => ({ kind, what });
  if (fsType === FS_MAGIC.SOCKFS || type === S_IFSOCK) return opaque('socket', `a socket (${link})`);
  if (fsType === FS_MAGIC.PIPEFS) return opaque('pipe', `a pipe (${link})`);
  if (fsType === FS_MAGIC.MQUEUE) return opaque('mqueue', `a POSIX message queue (${withoutDeleted(link)})`);
  if (fsType === FS_MAGIC.ANON_INODE_FS) return opaque('anon-inode', `${anonInodeName(link)} (${link})`);
  if (fsType === FS_MAGIC.PIDFS) return opaque('pidfd', id.pidfdPid === undefined ? `a pidfd (${link})` : `a pidfd of PID ${id.pidfdPid}`);
  if (fsType === FS_MAGIC.SECRETMEM) return opaque('secretmem', `a memfd_secret area (${link})`);
  if (fsType === FS_MAGIC.NSFS) return opaque('namespace', `a namespace file (${link})`);
  const fsName = INTERFACE_FILESYSTEMS.get(fsType);
  if (fsName) return opaque('interface-file', `${type === S_IFDIR ? 'a directory' : 'a file'} on ${fsName} (${link})`);
  if (!id.reachable) {
    // memfd_create and friends make shmem files on a kernel-internal mount no path leads to.
    const name = withoutDeleted(link).replace(/^\//, '');
    if (fsType === FS_MAGIC.TMPFS) return opaque('memfd', `a memfd (${name})`);
    if (fsType === FS_MAGIC.HUGETLBFS) return opaque('memfd', `a memfd on huge pages (${name})`);
    return opaque('unreachable', `a file on a kernel-internal mount (${link})`);
  }
  if (st.nlink === 0n && link.endsWith(DELETED)) {
    if (type === S_IFREG) return { kind: 'deleted', path: withoutDeleted(link), st };
    return opaque('deleted-other', `the deleted ${type === S_IFDIR ? 'directory' : 'file'} ${link}`);
  }
  switch (type) {
    case S_IFREG:
      return { kind: 'file', path: link, st };
    case S_IFDIR:
      return { kind: 'directory', path: link, st };
    case S_IFCHR:
      return TTY_MAJORS.has(Number((st.rdev >> 8n) & 0xfffn)) ? opaque('terminal', `the terminal ${link}`) : { kind: 'device', path: link, st };
    case S_IFIFO:
      return opaque('fifo', `the named pipe ${link}`);
    case S_IFBLK:
      return opaque('block-device', `the block device ${link}`);
    case S_IFLNK:
      return opaque('other', `the symbolic link ${link} (opened with O_PATH)`);
    default:
      return opaque('other', `${link} (file mode 0${st.mode.toString(8)})`);
  }
}

function withoutDeleted(link: string): string {
  return link.endsWith(DELETED) ? link.slice(0, -DELETED.length) : link;
}

/** "anon_inode:[eventfd]" or "anon_inode:inotify": the kernel's name for the inode, as a person says it. */
function anonInodeName(link: string): string {
  const name = link.replace(/^anon_inode:/, '').replace(/^\[(.*)\]$/, '$1');
  return ANON_INODE_NAMES[name] ?? `an anonymous inode "${name}"`;
}
