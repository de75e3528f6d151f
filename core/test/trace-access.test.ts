import { describe, expect, it } from 'vitest';
import { TargetError } from '../src/errors.js';
import { explainFreezeFailure, refuseUntraceable, type TraceView } from '../src/engine/trace-access.js';
import { KernelError } from '../src/kernel/kernel-error.js';
import type { ProcessStat, ProcessStatus } from '../src/kernel/procfs.js';

// PIDs above the kernel's limit (PID_MAX_LIMIT, 4194304): no real process has them, so /proc has nothing to add.
const CR = 90_000_001;
const SHELL = 90_000_002;
const APP = 90_000_003;
const CHILD = 90_000_004;
const DEBUGGER = 90_000_005;
const EPERM = 1;
const ESRCH = 3;
const EACCES = 13;

interface FakeProcess {
  comm: string;
  ppid: number;
  children?: number[];
  tracer?: number;
  state?: string;
  /** The kernel denies cr access to it (a security module, another user's process). */
  denied?: boolean;
}

/** The kernel as the checks see it, for a made-up set of processes; `yama` is ptrace_scope, if the system has Yama. */
function fakeKernel(processes: Record<number, FakeProcess>, options: { ptraceCap?: boolean; yama?: string } = {}): TraceView {
  const get = (pid: number) => processes[pid] ?? (() => { throw new TargetError(`no process with PID ${pid}`); })();
  const stat = (pid: number) => ({ pid, comm: get(pid).comm, ppid: get(pid).ppid, state: get(pid).state ?? 'S', flags: 0 }) as ProcessStat;
  return {
    procfs: {
      assertUserProcess: stat,
      stat,
      status: (pid: number) => ({ tgid: pid, tracerPid: get(pid).tracer ?? 0 }) as ProcessStatus,
      children: (pid: number) => get(pid).children ?? [],
      isRunning: (pid: number) => processes[pid] !== undefined && processes[pid].state !== 'Z',
      link: (pid: number, name: string) => {
        if (get(pid).denied) throw new KernelError('readlink', EACCES, `/proc/${pid}/${name}`);
        return '/usr/bin/app';
      },
      hasCapability: () => options.ptraceCap ?? true,
    },
    sysctl: {
      exists: (name: string) => name === 'kernel.yama.ptrace_scope' && options.yama !== undefined,
      read: () => options.yama!,
    },
    namespaces: { current: () => ({ inode: 0xeffffffc, close: () => undefined }) as never },
  };
}

/** cr run from a shell, beside an app with one child. */
const machine = (app: Partial<FakeProcess> = {}, child: Partial<FakeProcess> = {}): Record<number, FakeProcess> => ({
  1: { comm: 'init', ppid: 0, children: [SHELL, APP, DEBUGGER] },
  [SHELL]: { comm: 'bash', ppid: 1, children: [CR] },
  [CR]: { comm: 'node', ppid: SHELL },
  [APP]: { comm: 'app', ppid: 1, children: [CHILD], ...app },
  [CHILD]: { comm: 'worker', ppid: APP, ...child },
  [DEBUGGER]: { comm: 'gdb', ppid: 1 },
});

const refusal = (kernel: TraceView, pid: number, whole = true) => {
  try {
    refuseUntraceable(kernel, pid, whole, [CR]);
  } catch (err) {
    expect(err).toBeInstanceOf(TargetError);
    return (err as TargetError).message;
  }
  return undefined;
};

describe('refuseUntraceable: before anything is frozen', () => {
  it('lets a tree cr may trace pass', () => {
    expect(refusal(fakeKernel(machine()), APP)).toBeUndefined();
  });

  it('refuses PID 1, cr itself and a process cr runs below, with or without its tree', () => {
    const kernel = fakeKernel(machine());
    expect(refusal(kernel, 1)).toMatch(/^cannot checkpoint PID 1 \(init\): it is this system's init process, .*; checkpoint a process tree below it$/);
    expect(refusal(kernel, CR)).toBe(`cannot checkpoint PID ${CR} (node): it is the process cr itself runs in, which cr cannot freeze; checkpoint it from another process`);
    for (const whole of [true, false]) expect(refusal(kernel, SHELL, whole)).toMatch(new RegExp(`^cannot checkpoint PID ${SHELL} \\(bash\\): cr \\(PID ${CR}\\) runs below it, and cr cannot freeze a tree it runs in;`));
  });

  it('names a traced child of the tree, and the tree alone (--no-tree) passes', () => {
    const kernel = fakeKernel(machine({}, { tracer: DEBUGGER }));
    expect(refusal(kernel, APP)).toBe(`cannot checkpoint PID ${APP} (app): PID ${CHILD} (worker) is being traced by PID ${DEBUGGER} (gdb), and a process can have one tracer only; detach that debugger or tracer first`);
    expect(refusal(kernel, APP, false)).toBeUndefined();
  });

  it('names every process at once: each traced one with its tracer, those the kernel denies cr together', () => {
    const kernel = fakeKernel(machine({ tracer: DEBUGGER }, { denied: true }));
    expect(refusal(kernel, APP)).toBe(
      [
        `cannot checkpoint PID ${APP} (app): 2 processes of its tree cannot be traced:`,
        `  PID ${APP} (app) is being traced by PID ${DEBUGGER} (gdb), and a process can have one tracer only; detach that debugger or tracer first`,
        `  the kernel does not let cr trace PID ${CHILD} (worker) (reading /proc/PID/exe fails with EACCES) although cr has CAP_SYS_PTRACE, so a security module or a sandbox cr runs in forbids it (Landlock, for one, lets a sandboxed process trace only processes of its own sandbox); run cr outside that sandbox`,
      ].join('\n'),
    );
  });

  it('says cr lacks CAP_SYS_PTRACE when it does, and passes over a zombie child', () => {
    const kernel = fakeKernel(machine({ denied: true }, { denied: true, state: 'Z' }), { ptraceCap: false });
    expect(refusal(kernel, APP)).toBe(
      `cannot checkpoint PID ${APP} (app): the kernel does not let cr trace it (reading /proc/PID/exe fails with EACCES): tracing a process of another user, or one that changed its ids, needs CAP_SYS_PTRACE, which cr lacks; run cr as root`,
    );
  });

  it('refuses every target under Yama scope 3, and under scope 2 without CAP_SYS_PTRACE; scope 1 is left to the seize', () => {
    expect(refusal(fakeKernel(machine(), { yama: '3' }), APP)).toMatch(/^cannot checkpoint PID \d+ \(app\): kernel\.yama\.ptrace_scope is 3 on this system, which forbids every ptrace attach until the next reboot/);
    expect(refusal(fakeKernel(machine(), { yama: '2' }), APP)).toBeUndefined();
    expect(refusal(fakeKernel(machine(), { yama: '2', ptraceCap: false }), APP)).toMatch(/kernel\.yama\.ptrace_scope is 2, which lets only a process with CAP_SYS_PTRACE trace another, and cr lacks it; run cr as root$/);
    expect(refusal(fakeKernel(machine(), { yama: '1', ptraceCap: false }), APP)).toBeUndefined();
  });
});

describe('explainFreezeFailure: when the seize itself fails', () => {
  const seizeFailed = (pid: number, errno: number) => new KernelError('ptrace(PTRACE_SEIZE)', errno, `pid ${pid}`);

  it('names a tracer that attached after the checks', () => {
    const err = explainFreezeFailure(fakeKernel(machine({}, { tracer: DEBUGGER })), seizeFailed(CHILD, EPERM));
    expect(err?.message).toBe(`cannot checkpoint PID ${CHILD} (worker): it is being traced by PID ${DEBUGGER} (gdb), and a process can have one tracer only; detach that debugger or tracer first`);
    expect(err?.exitCode).toBe(5);
  });

  it('says a process exited, whether the seize or a read of /proc found it gone or a zombie', () => {
    const gone = fakeKernel({ ...machine(), [CHILD]: undefined as never });
    expect(explainFreezeFailure(gone, seizeFailed(CHILD, ESRCH))?.message).toBe(`PID ${CHILD} exited while cr was freezing it; it has nothing left to checkpoint`);
    expect(explainFreezeFailure(gone, new KernelError('read', 2, `/proc/${CHILD}/status`))?.message).toBe(`PID ${CHILD} exited while cr was freezing it; it has nothing left to checkpoint`);
    // The kernel refuses to attach to a task that is exiting with EPERM, not ESRCH.
    expect(explainFreezeFailure(fakeKernel(machine({}, { state: 'Z' })), seizeFailed(CHILD, EPERM))?.message).toBe(`PID ${CHILD} (worker) exited while cr was freezing it; it has nothing left to checkpoint`);
  });

  it('names Yama scope 1 when cr lacks CAP_SYS_PTRACE, and otherwise says what it checked', () => {
    expect(explainFreezeFailure(fakeKernel(machine(), { yama: '1', ptraceCap: false }), seizeFailed(APP, EPERM))?.message).toMatch(
      /^cannot checkpoint PID \d+ \(app\): kernel\.yama\.ptrace_scope is 1, which lets a process without CAP_SYS_PTRACE trace only its own descendants/,
    );
    expect(explainFreezeFailure(fakeKernel(machine()), seizeFailed(APP, EPERM))?.message).toBe(
      `cannot checkpoint PID ${APP} (app): the kernel refused to let cr trace it (ptrace(PTRACE_SEIZE): EPERM), and neither another tracer nor a missing permission cr can see explains it; a security module may forbid it`,
    );
  });

  it('leaves other failures of a live process as they are', () => {
    const kernel = fakeKernel(machine());
    expect(explainFreezeFailure(kernel, new Error('plain'))).toBeUndefined();
    expect(explainFreezeFailure(kernel, new KernelError('ptrace(PTRACE_INTERRUPT)', ESRCH, `pid ${APP}`))).toBeUndefined();
  });
});
