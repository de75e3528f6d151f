import { Directory } from './directory.js';
import { FeatureProbe } from './features.js';
import { Libc, __WALL } from './libc.js';
import { Namespaces } from './namespaces.js';
import { pageRuns, type PageRun, type PageSelection } from './pagemap.js';
import { Pipes } from './pipes.js';
import { EventFds } from './event-fds.js';
import { readVmas, type Vma } from './proc-maps.js';
import { Procfs } from './procfs.js';
import { Ptrace } from './ptrace.js';
import { RemoteTask } from './remote-task.js';
import { createSeed } from './seed.js';
import { Sysctl } from './sysctl.js';
import { SysvIpc } from './sysvipc.js';
import { TaskMemory } from './task-memory.js';

/**
 * The kernel layer as plugins see it: one injectable service (inject `Kernel`) whose parts wrap
 * libc calls and /proc with typed methods that throw KernelError or a CrError subclass.
 */
export class Kernel {
  readonly libc = new Libc();
  readonly namespaces = new Namespaces(this.libc);
  readonly sysctl = new Sysctl();
  readonly procfs = new Procfs();
  readonly sysvipc = new SysvIpc(this.libc, this.sysctl);
  readonly ptrace = new Ptrace(this.libc);
  readonly features = new FeatureProbe(this.libc, this.namespaces);
  readonly memory = new TaskMemory();
  readonly pipes = new Pipes(this.libc);
  readonly eventFds = new EventFds(this.libc);

  /** Opens a directory for *at calls that never follow a symlink planted in it (see directory.ts). */
  openDirectory(path: string): Directory {
    return Directory.open(this.libc, path);
  }

  /** Seizes and stops a running process, to read its state and run syscalls inside it. */
  seize(pid: number): RemoteTask {
    return RemoteTask.seize(this.ptrace, pid);
  }

  /** A stopped child of cr with exactly `pid`, to be rebuilt into a restored process (see seed.ts). */
  createSeed(pid: number): RemoteTask {
    return createSeed(this.libc, this.ptrace, pid);
  }

  /**
   * Waits for a child of cr (a restored process) to exit and returns a shell-style status: its
   * exit code, or 128 + the signal that killed it.
   */
  waitForExit(pid: number): number {
    for (;;) {
      const { status } = this.libc.waitpid(pid, __WALL);
      if ((status & 0x7f) === 0) return (status >> 8) & 0xff;
      if ((status & 0xff) !== 0x7f) return 128 + (status & 0x7f);
    }
  }

  /** The mappings of a process, with their VmFlags. */
  vmas(pid: number): Vma[] {
    return readVmas(pid);
  }

  /** The runs of pages of [start, end) whose contents must be saved (see pagemap.ts). */
  pageRuns(pid: number, start: bigint, end: bigint, selection: PageSelection): PageRun[] {
    return pageRuns(pid, start, end, selection);
  }

  /** hostname and domainname of the UTS namespace the calling thread is in. */
  utsNames(): { hostname: string; domainname: string } {
    const u = this.libc.uname();
    return { hostname: u.nodename, domainname: u.domainname };
  }

  setUtsNames(names: { hostname: string; domainname: string }): void {
    this.libc.sethostname(names.hostname);
    this.libc.setdomainname(names.domainname);
  }
}
