import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readSync, closeSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errnoName } from './kernel-error.js';
import { Libc, __WALL } from './libc.js';
import { Namespaces, NAMESPACE_FLAGS, type NamespaceKind } from './namespaces.js';
import { PAGE_SIZE } from './pagemap.js';
import { PTRACE_DETACH, PTRACE_INTERRUPT, PTRACE_SEIZE } from './ptrace.js';
import { SIGKILL } from './syscalls.js';

export interface FeatureResult {
  feature: string;
  ok: boolean;
  /** A required feature missing means some cr command cannot work at all. */
  required: boolean;
  detail: string;
}

/**
 * `cr check`: each probe exercises the kernel feature for real (no version-number guessing) and
 * leaves nothing behind.
 */
export class FeatureProbe {
  constructor(
    private readonly libc: Libc,
    private readonly namespaces: Namespaces,
  ) {}

  runAll(): FeatureResult[] {
    return [
      this.probe('ptrace seize/interrupt', true, () => this.ptrace()),
      ...(['shm_next_id', 'msg_next_id', 'sem_next_id', 'ns_last_pid'] as const).map((name) =>
        this.probe(`sysctl kernel.${name}`, true, () => {
          if (!existsSync(`/proc/sys/kernel/${name}`)) throw new Error('absent: the kernel lacks CONFIG_CHECKPOINT_RESTORE');
          return 'present';
        }),
      ),
      this.probe('clone3 with set_tid', true, () => {
        const errno = this.libc.clone3SetTidProbe(1);
        if (errno !== 17) throw new Error(`asking for PID 1 gave ${errno === 0 ? 'success' : errnoName(errno)}, expected EEXIST`);
        return 'a chosen PID is honoured';
      }),
      this.probe('pagemap', true, () => this.pagemap()),
      ...(Object.keys(NAMESPACE_FLAGS) as NamespaceKind[]).map((kind) =>
        this.probe(`${kind} namespace`, kind === 'uts' || kind === 'ipc', () => {
          if (!existsSync(`/proc/self/ns/${kind}`)) throw new Error(`/proc/self/ns/${kind} is absent`);
          if (kind !== 'uts' && kind !== 'ipc') return 'present';
          this.namespaces.create(kind).close();
          return 'present; a new one can be created';
        }),
      ),
      this.probe('namespace pinning (nsfs bind mount)', true, () => {
        const dir = mkdtempSync(join(tmpdir(), 'cr-check-'));
        const ns = this.namespaces.create('uts');
        try {
          this.namespaces.pin(ns, join(dir, 'uts'));
          this.namespaces.unpin(join(dir, 'uts'));
          return 'a namespace outlives its last process when bind-mounted';
        } finally {
          ns.close();
          rmSync(dir, { recursive: true, force: true });
        }
      }),
    ];
  }

  private probe(feature: string, required: boolean, run: () => string): FeatureResult {
    try {
      return { feature, required, ok: true, detail: run() };
    } catch (err) {
      return { feature, required, ok: false, detail: (err as Error).message };
    }
  }

  /** Seizes a process that is not our child (so libuv cannot reap its stops), stops it, lets it go. */
  private ptrace(): string {
    const pid = Number(execFileSync('sh', ['-c', 'sleep 60 </dev/null >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).trim());
    try {
      this.libc.ptrace(PTRACE_SEIZE, pid, 0, 0, 'ptrace(PTRACE_SEIZE)');
      this.libc.ptrace(PTRACE_INTERRUPT, pid, 0, 0, 'ptrace(PTRACE_INTERRUPT)');
      const { status } = this.libc.waitpid(pid, __WALL);
      const stopped = (status & 0xff) === 0x7f;
      this.libc.ptrace(PTRACE_DETACH, pid, 0, 0, 'ptrace(PTRACE_DETACH)');
      if (!stopped) throw new Error(`waitpid reported status 0x${status.toString(16)}, not a stop`);
      return 'a running process was stopped and released';
    } finally {
      this.libc.kill(pid, SIGKILL);
    }
  }

  /** Reads our own pagemap entry for a page we just touched: it must show present with a PFN. */
  private pagemap(): string {
    // Two pages of our own memory, so that one whole page lies inside.
    const page = Buffer.alloc(PAGE_SIZE * 2, 1);
    const touched = (this.libc.addressOf(page) / BigInt(PAGE_SIZE) + 1n) * BigInt(PAGE_SIZE);
    const fd = openSync('/proc/self/pagemap', 'r');
    try {
      const entry = Buffer.alloc(8);
      readSync(fd, entry, 0, 8, Number((touched / BigInt(PAGE_SIZE)) * 8n));
      const value = entry.readBigUInt64LE();
      if (!(value >> 63n)) throw new Error('a touched page is not reported present');
      if ((value & ((1n << 55n) - 1n)) === 0n) throw new Error('page frame numbers are hidden (need CAP_SYS_ADMIN)');
      return 'present pages and frame numbers visible';
    } finally {
      closeSync(fd);
      // The page stays referenced, so in place, until its entry was read.
      void page;
    }
  }
}
