import 'reflect-metadata';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Libc } from '../src/kernel/libc.js';
import { Ptrace } from '../src/kernel/ptrace.js';
import { readMappings } from '../src/kernel/proc-maps.js';
import type { RemoteTask } from '../src/kernel/remote-task.js';
import { createSeed } from '../src/kernel/seed.js';
import { createThread } from '../src/kernel/thread-group.js';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../src/kernel/syscalls.js';
import { NAMESPACE_FLAGS, Namespaces } from '../src/kernel/namespaces.js';

/** Ptrace that counts round trips: remote syscalls (two stops each) and batches (one stop). */
class CountingPtrace extends Ptrace {
  single = 0;
  batches = 0;
  override remoteSyscall(pid: number, nr: number, args: readonly bigint[] = []): bigint {
    this.single++;
    return super.remoteSyscall(pid, nr, args);
  }
  override runUntilSelfStop(...args: Parameters<Ptrace['runUntilSelfStop']>): void {
    this.batches++;
    super.runUntilSelfStop(...args);
  }
  reset(): void {
    this.single = 0;
    this.batches = 0;
  }
}

const PAGE = 4096n;
const libc = new Libc();
const ptrace = new CountingPtrace(libc);
let dir: string;
let seed: RemoteTask | undefined;

/** A PID nobody has, well above the last one handed out. */
function freePid(): number {
  const last = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8'));
  const max = Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8'));
  for (let pid = ((last + 3000) % (max - 1000)) + 300; ; pid++) if (!existsSync(`/proc/${pid}`)) return pid;
}

const mapped = (pid: number, start: bigint) => readMappings(pid).find((m) => m.start === start);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'cr-remote-batch-'));
});

afterEach(() => {
  seed?.kill();
  seed = undefined;
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('calls held back in a seed (RemoteTask.together)', () => {
  it('go in one stop with a descriptor pulled after them, in order, through the pidfd the same batch opens', () => {
    seed = createSeed(libc, ptrace, freePid());
    const file = join(dir, 'pulled');
    writeFileSync(file, 'x');
    const local = openSync(file, 'r');
    try {
      const probe = seed.mmapAnywhere(16n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      ptrace.reset();
      const fd = seed.together(() => {
        seed!.munmap(probe, 8n * PAGE);
        seed!.mprotect(probe + 8n * PAGE, 8n * PAGE, PROT_READ);
        return seed!.pullFdCloseOnExec(local);
      });
      expect({ single: ptrace.single, batches: ptrace.batches }).toEqual({ single: 0, batches: 1 });
      expect(mapped(seed.pid, probe)).toBeUndefined();
      expect(mapped(seed.pid, probe + 8n * PAGE)?.prot).toBe(PROT_READ);
      expect(readlinkSync(`/proc/${seed.pid}/fd/${fd}`)).toBe(file);
      const flags = Number.parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${seed.pid}/fdinfo/${fd}`, 'utf8'))![1]!, 8);
      expect(flags & 0o2000000).not.toBe(0);
      // The pidfd the batch opened on cr is closed again: the pulled file is the task's only descriptor.
      expect(readdirSync(`/proc/${seed.pid}/fd`).map(Number)).toEqual([fd]);
    } finally {
      closeSync(local);
    }
  });

  it('that read what was put in the work area go in one stop, each reading its own bytes', () => {
    seed = createSeed(libc, ptrace, freePid());
    seed.together(() => seed!.mprotect(0n, 0n, PROT_READ));
    const actions = new Map([10, 12, 14].map((signal) => [signal, { handler: 0x1000n * BigInt(signal), flags: 0x4000000n, restorer: 0x2000n + BigInt(signal), mask: 1n << BigInt(signal) }]));
    ptrace.reset();
    seed.together(() => {
      seed!.setName('first');
      seed!.setSignalActions(actions);
      seed!.setItimer(2, { intervalUs: 0n, valueUs: 3_000_000_000n });
      seed!.setName('second');
    });
    expect({ single: ptrace.single, batches: ptrace.batches }).toEqual({ single: 0, batches: 1 });
    expect(readFileSync(`/proc/${seed.pid}/comm`, 'utf8')).toBe('second\n');
    for (const [signal, action] of actions) expect(seed.getSignalAction(signal)).toEqual(action);
    expect(seed.getItimer(2).valueUs).toBeGreaterThan(2_000_000_000n);
  });

  it('install descriptors on exactly their numbers, the lowest free one too, replacing what they held: a hundred in one stop', () => {
    seed = createSeed(libc, ptrace, freePid());
    const file = join(dir, 'installed');
    writeFileSync(file, 'x');
    const local = openSync(file, 'r');
    const closeOnExec = (fd: number) => (Number.parseInt(/^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${seed!.pid}/fdinfo/${fd}`, 'utf8'))![1]!, 8) & 0o2000000) !== 0;
    try {
      seed.together(() => seed!.mprotect(0n, 0n, PROT_READ));
      ptrace.reset();
      // A seed has no descriptor: 0 is the number the pidfd of the first install takes.
      seed.installFds([
        { localFd: local, fd: 0, closeOnExec: false },
        { localFd: local, fd: 3, closeOnExec: true },
        { localFd: local, fd: 7, closeOnExec: true },
      ]);
      seed.installFd(local, 7, false);
      expect({ single: ptrace.single, batches: ptrace.batches }).toEqual({ single: 0, batches: 2 });
      expect(readdirSync(`/proc/${seed.pid}/fd`).map(Number).sort((a, b) => a - b)).toEqual([0, 3, 7]);
      for (const fd of [0, 3, 7]) expect(readlinkSync(`/proc/${seed.pid}/fd/${fd}`)).toBe(file);
      expect([0, 3, 7].map(closeOnExec)).toEqual([false, true, false]);
      ptrace.reset();
      const many = Array.from({ length: 150 }, (_, i) => ({ localFd: local, fd: 10 + i, closeOnExec: false }));
      seed.installFds(many);
      expect(ptrace.batches).toBe(2);
      expect(readdirSync(`/proc/${seed.pid}/fd`).length).toBe(153);
      // Held-back calls that would not fit one table with a hundred installs go first, alone.
      ptrace.reset();
      seed.together(() => {
        for (let i = 0; i < 300; i++) seed!.umask(0o22);
        seed!.installFds(many.slice(0, 100));
      });
      expect(ptrace.batches).toBe(2);
    } finally {
      closeSync(local);
    }
  });

  it('enter a directory and a namespace cr holds open, one stop each with what was held back, keeping no descriptor', () => {
    seed = createSeed(libc, ptrace, freePid());
    const uts = new Namespaces(libc).create('uts');
    const local = openSync(dir, 'r');
    try {
      seed.together(() => seed!.mprotect(0n, 0n, PROT_READ));
      ptrace.reset();
      seed.together(() => {
        seed!.setName('entering');
        seed!.enterDirectory(local);
      });
      seed.enterNamespace(uts.fd, NAMESPACE_FLAGS.uts);
      expect({ single: ptrace.single, batches: ptrace.batches }).toEqual({ single: 0, batches: 2 });
      expect(readFileSync(`/proc/${seed.pid}/comm`, 'utf8')).toBe('entering\n');
      expect(readlinkSync(`/proc/${seed.pid}/cwd`)).toBe(dir);
      expect(readlinkSync(`/proc/${seed.pid}/ns/uts`)).toBe(`uts:[${uts.inode}]`);
      expect(readdirSync(`/proc/${seed.pid}/fd`)).toEqual([]);
    } finally {
      closeSync(local);
      uts.close();
    }
  });

  it('move cr work area out of the way of a mapping made over it, and of a mapping about to be unmapped', () => {
    seed = createSeed(libc, ptrace, freePid());
    seed.together(() => seed!.mprotect(0n, 0n, PROT_READ));
    const area = readMappings(seed.pid).find((m) => seed!.isWorkArea(m.start))!;
    expect(area).toBeDefined();
    const length = area.end - area.start;
    seed.together(() => seed!.mmap(area.start, length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED));
    expect(seed.isWorkArea(area.start)).toBe(false);
    const moved = readMappings(seed.pid).find((m) => seed!.isWorkArea(m.start))!;
    expect(moved.end - moved.start).toBe(length);
    expect(moved.start >= area.end + (1n << 20n) || moved.end + (1n << 20n) <= area.start).toBe(true);
    // The program's new mapping is there, empty: not cr's code and table.
    expect(seed.read(area.start, 4096).equals(Buffer.alloc(4096))).toBe(true);
    seed.together(() => seed!.munmap(area.start, length));
    expect(mapped(seed.pid, area.start)).toBeUndefined();
    expect(readMappings(seed.pid).some((m) => seed!.isWorkArea(m.start))).toBe(true);
  });

  it('keep cr work area where it is while a call held back reads what was put in it: they then run one by one', () => {
    seed = createSeed(libc, ptrace, freePid());
    seed.together(() => seed!.mprotect(0n, 0n, PROT_READ));
    const area = readMappings(seed.pid).find((m) => seed!.isWorkArea(m.start))!;
    seed.together(() => {
      seed!.setName('held-back');
      seed!.mmap(area.start, area.end - area.start, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
    });
    expect(readFileSync(`/proc/${seed.pid}/comm`, 'utf8')).toBe('held-back\n');
    expect(mapped(seed.pid, area.start)?.prot).toBe(PROT_READ);
    expect(seed.isWorkArea(area.start)).toBe(false);
  });

  it('run one by one when they unmap nearly everything, and the seed takes more batches after', () => {
    seed = createSeed(libc, ptrace, freePid());
    const vdso = readMappings(seed.pid).filter((m) => m.path === '[vvar]' || m.path === '[vvar_vclock]' || m.path === '[vdso]');
    const first = vdso[0]!.start;
    const last = vdso[vdso.length - 1]!.end;
    seed.together(() => {
      seed!.munmap(0n, first);
      seed!.munmap(last, 0x7ffffffff000n - last);
    });
    expect(readMappings(seed.pid).map((m) => m.path).filter((p) => p !== '[vsyscall]')).toEqual(vdso.map((m) => m.path));
    const at = 0x10000000000n;
    ptrace.reset();
    seed.together(() => {
      seed!.mmap(at, 4n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED);
      seed!.mprotect(at, PAGE, PROT_READ);
    });
    // One call maps the work area anew; the rest is one batch.
    expect({ single: ptrace.single, batches: ptrace.batches }).toEqual({ single: 1, batches: 1 });
    expect(mapped(seed.pid, at)?.prot).toBe(PROT_READ);
  });

  it('throw the first failure by name once all of them ran; what work throws drops what it held back', () => {
    seed = createSeed(libc, ptrace, freePid());
    const probe = seed.mmapAnywhere(4n * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    expect(() =>
      seed!.together(() => {
        seed!.close(977);
        seed!.mprotect(probe, PAGE, PROT_READ);
      }),
    ).toThrow(/close\(in PID \d+\): EBADF/);
    expect(mapped(seed.pid, probe)?.prot).toBe(PROT_READ);
    expect(() =>
      seed!.together(() => {
        seed!.munmap(probe, 4n * PAGE);
        throw new Error('given up');
      }),
    ).toThrow('given up');
    expect(mapped(seed.pid, probe)).toBeDefined();
  });
});

describe('a thread cr makes in a seed', () => {
  const comm = (pid: number, tid: number) => readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();

  it("uses the seed's work area: no mapping of its own, and what either held back runs before the other writes into the area", () => {
    seed = createSeed(libc, ptrace, freePid());
    seed.setName('leader-a');
    const mappings = readMappings(seed.pid).length;
    const thread = createThread(ptrace, seed, freePid());
    thread.together(() => thread.setName('thread-a'));
    expect(readMappings(seed.pid).length).toBe(mappings);
    expect(comm(seed.pid, thread.pid)).toBe('thread-a');
    // Each name waits in the area for its call while the other task puts its own name there.
    seed.together(() => {
      seed!.setName('leader-b');
      thread.setName('thread-b');
    });
    expect([comm(seed.pid, seed.pid), comm(seed.pid, thread.pid)]).toEqual(['leader-b', 'thread-b']);
    thread.together(() => {
      thread.setName('thread-c');
      seed!.setName('leader-c');
    });
    expect([comm(seed.pid, seed.pid), comm(seed.pid, thread.pid)]).toEqual(['leader-c', 'thread-c']);
    thread.dropScratch();
    expect(readMappings(seed.pid).length).toBe(mappings);
    seed.dropScratch();
    expect(readMappings(seed.pid).length).toBe(mappings - 1);
  });
});
