import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { FS_MAGIC, Kernel, classifyFd, type FdIdentity, type FdKind } from '@cr/core';
import { describe, expect, it } from 'vitest';

const EXT4 = 0xef53;
const REG = 0o100644n;

/** An identity as Procfs.fds gathers it, with a regular file on ext4 as the default. */
function identity(over: Partial<FdIdentity> & { mode?: bigint; nlink?: bigint; rdev?: bigint }): FdIdentity {
  const { mode = REG, nlink = 1n, rdev = 0n, ...rest } = over;
  return { link: '/data/x', st: { mode, nlink, uid: 0n, gid: 0n, rdev, size: 10n }, fsType: EXT4, reachable: true, ...rest };
}

const described = (kind: FdKind) => ('what' in kind ? [kind.kind, kind.what] : [kind.kind, kind.path]);

describe('classifyFd: what an fd is, by the filesystem it is on and its file type', () => {
  it('a message queue is one whatever its name looks like, linked or removed', () => {
    expect(described(classifyFd(identity({ link: '/crq', fsType: FS_MAGIC.MQUEUE, reachable: false })))).toEqual(['mqueue', 'a POSIX message queue (/crq)']);
    expect(described(classifyFd(identity({ link: '/crq (deleted)', nlink: 0n, fsType: FS_MAGIC.MQUEUE, reachable: false })))).toEqual([
      'mqueue',
      'a POSIX message queue (/crq)',
    ]);
  });

  it('anonymous inodes are named by the kernel name of their inode', () => {
    const anon = (link: string) => described(classifyFd(identity({ link, mode: 0n, fsType: FS_MAGIC.ANON_INODE_FS, reachable: false })));
    expect(anon('anon_inode:[eventfd]')).toEqual(['anon-inode', 'an eventfd (anon_inode:[eventfd])']);
    expect(anon('anon_inode:[eventpoll]')).toEqual(['anon-inode', 'an epoll instance (anon_inode:[eventpoll])']);
    expect(anon('anon_inode:[signalfd]')).toEqual(['anon-inode', 'a signalfd (anon_inode:[signalfd])']);
    expect(anon('anon_inode:[timerfd]')).toEqual(['anon-inode', 'a timerfd (anon_inode:[timerfd])']);
    expect(anon('anon_inode:inotify')).toEqual(['anon-inode', 'an inotify instance (anon_inode:inotify)']);
    expect(anon('anon_inode:[something-new]')).toEqual(['anon-inode', 'an anonymous inode "something-new" (anon_inode:[something-new])']);
  });

  it('pidfds, memfd_secret areas, namespaces, sockets and pipes by their own filesystems', () => {
    expect(described(classifyFd(identity({ link: 'anon_inode:[pidfd]', mode: 0n, fsType: FS_MAGIC.PIDFS, reachable: false, pidfdPid: 42 })))).toEqual([
      'pidfd',
      'a pidfd of PID 42',
    ]);
    expect(classifyFd(identity({ link: '/secretmem (deleted)', fsType: FS_MAGIC.SECRETMEM, reachable: false })).kind).toBe('secretmem');
    expect(classifyFd(identity({ link: 'ipc:[4026531839]', fsType: FS_MAGIC.NSFS, reachable: false })).kind).toBe('namespace');
    expect(described(classifyFd(identity({ link: 'socket:[9]', mode: 0o140777n, fsType: FS_MAGIC.SOCKFS, reachable: false })))).toEqual(['socket', 'a socket (socket:[9])']);
    expect(described(classifyFd(identity({ link: 'pipe:[9]', mode: 0o010600n, fsType: FS_MAGIC.PIPEFS, reachable: false })))).toEqual(['pipe', 'a pipe (pipe:[9])']);
  });

  it('files of kernel-interface filesystems are not plain files, nor their directories', () => {
    expect(described(classifyFd(identity({ link: '/proc/7/status', fsType: FS_MAGIC.PROC })))).toEqual(['interface-file', 'a file on procfs (/proc/7/status)']);
    expect(described(classifyFd(identity({ link: '/sys/fs/cgroup', mode: 0o040755n, fsType: FS_MAGIC.CGROUP2 })))).toEqual([
      'interface-file',
      'a directory on cgroup2 (/sys/fs/cgroup)',
    ]);
    expect(classifyFd(identity({ link: '/sys/kernel/x', fsType: FS_MAGIC.SYSFS })).kind).toBe('interface-file');
  });

  it('a memfd is a tmpfs file on a mount no path leads to; a deleted tmpfs file on a real mount is a deleted file', () => {
    expect(described(classifyFd(identity({ link: '/memfd:buf (deleted)', nlink: 0n, fsType: FS_MAGIC.TMPFS, reachable: false })))).toEqual(['memfd', 'a memfd (memfd:buf)']);
    expect(described(classifyFd(identity({ link: '/memfd:big (deleted)', nlink: 0n, fsType: FS_MAGIC.HUGETLBFS, reachable: false })))).toEqual(['memfd', 'a memfd on huge pages (memfd:big)']);
    expect(described(classifyFd(identity({ link: '/memfd:buf (deleted)', nlink: 0n, fsType: FS_MAGIC.TMPFS, reachable: true })))).toEqual(['deleted', '/memfd:buf']);
    expect(classifyFd(identity({ link: '/x', fsType: EXT4, reachable: false })).kind).toBe('unreachable');
  });

  it('files, directories, devices and deleted files on ordinary filesystems are reopened by path', () => {
    expect(described(classifyFd(identity({})))).toEqual(['file', '/data/x']);
    expect(described(classifyFd(identity({ link: '/data', mode: 0o040755n })))).toEqual(['directory', '/data']);
    expect(described(classifyFd(identity({ link: '/data/x (deleted)', nlink: 0n })))).toEqual(['deleted', '/data/x']);
    expect(described(classifyFd(identity({ link: '/dev/null', mode: 0o020666n, rdev: 0x103n, fsType: FS_MAGIC.TMPFS })))).toEqual(['device', '/dev/null']);
    // A file named like a removed one, still linked, is a file.
    expect(described(classifyFd(identity({ link: '/data/x (deleted)' })))).toEqual(['file', '/data/x (deleted)']);
  });

  it('terminals, named pipes, block devices and removed directories are not files to reopen', () => {
    expect(described(classifyFd(identity({ link: '/dev/pts/3', mode: 0o020620n, rdev: (136n << 8n) | 3n, fsType: 0x1cd1 })))).toEqual([
      'terminal',
      'the terminal /dev/pts/3',
    ]);
    expect(described(classifyFd(identity({ link: '/run/fifo', mode: 0o010644n })))).toEqual(['fifo', 'the named pipe /run/fifo']);
    expect(described(classifyFd(identity({ link: '/dev/sda', mode: 0o060660n, fsType: FS_MAGIC.TMPFS })))).toEqual(['block-device', 'the block device /dev/sda']);
    expect(described(classifyFd(identity({ link: '/data/gone (deleted)', mode: 0o040755n, nlink: 0n })))).toEqual([
      'deleted-other',
      'the deleted directory /data/gone (deleted)',
    ]);
  });
});

describe('Procfs.fds identifies the descriptors of a live process', () => {
  it('tells a procfs file, a deleted file and a plain file of this process apart', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-fdkind-'));
    const opened: number[] = [];
    try {
      writeFileSync(join(dir, 'plain'), 'x');
      opened.push(openSync(join(dir, 'plain'), 'r'), openSync('/proc/self/status', 'r'), openSync(join(dir, 'gone'), 'w'));
      unlinkSync(join(dir, 'gone'));
      const kinds = new Map(new Kernel().procfs.fds(process.pid).map((info) => [info.fd, info.kind]));
      expect(described(kinds.get(opened[0]!)!)).toEqual(['file', join(dir, 'plain')]);
      expect(kinds.get(opened[1]!)!.kind).toBe('interface-file');
      expect(described(kinds.get(opened[2]!)!)).toEqual(['deleted', join(dir, 'gone')]);
    } finally {
      opened.forEach((fd) => closeSync(fd));
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Procfs.fdFlags lists the descriptors of a live process from fdinfo alone', () => {
  it('with their flags, close-on-exec included, and whether a lock is held through them', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cr-fdflags-'));
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    // Two open files of one inode: the first kept across exec, the second flock'ed (an flock belongs to its open file alone).
    const program = `import fcntl, os, sys
a = os.open(sys.argv[1], os.O_RDWR | os.O_APPEND)
os.set_inheritable(a, True)
b = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(b, fcntl.LOCK_SH)
print(a, b, flush=True)
sys.stdin.read()`;
    const child = spawn('python3', ['-c', program, file], { stdio: ['pipe', 'pipe', 'inherit'] });
    try {
      const [line] = (await once(createInterface({ input: child.stdout! }), 'line')) as [string];
      const [a, b] = line.trim().split(' ').map(Number) as [number, number];
      const listed = new Kernel().procfs.fdFlags(child.pid!);
      expect(listed.map((f) => f.fd)).toEqual([...listed.map((f) => f.fd)].sort((x, y) => x - y));
      // The kernel shows O_LARGEFILE on every open file of a 64-bit process.
      const [O_RDWR, O_APPEND, O_LARGEFILE, O_CLOEXEC] = [0o2, 0o2000, 0o100000, 0o2000000];
      expect(listed.find((f) => f.fd === a)).toEqual({ fd: a, flags: O_RDWR | O_APPEND | O_LARGEFILE, locked: false });
      expect(listed.find((f) => f.fd === b)).toEqual({ fd: b, flags: O_LARGEFILE | O_CLOEXEC, locked: true });
    } finally {
      child.kill('SIGKILL');
      await once(child, 'exit');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
