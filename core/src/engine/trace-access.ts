import { crProcesses } from './caller.js';
import { TargetError } from '../errors.js';
import type { Kernel } from '../kernel/kernel.js';
import { KernelError } from '../kernel/kernel-error.js';
import { threadIds } from '../kernel/procfs.js';

/** The parts of the kernel layer that tell whether cr may trace a process. */
export type TraceView = {
  procfs: Pick<Kernel['procfs'], 'assertUserProcess' | 'stat' | 'status' | 'children' | 'link' | 'hasCapability' | 'isRunning'>;
  sysctl: Pick<Kernel['sysctl'], 'exists' | 'read'>;
  namespaces: Pick<Kernel['namespaces'], 'current'>;
};

const CAP_SYS_PTRACE = 19;
/** The inode of the initial PID namespace (PROC_PID_INIT_INO in include/linux/proc_ns.h). */
const INITIAL_PID_NS_INODE = 0xeffffffc;
const YAMA_SCOPE = 'kernel.yama.ptrace_scope';

/**
 * Refuses, before anything is frozen, a process target cr could not trace, or must not: PID 1,
 * cr itself or a process cr runs below (and the same of the caller a command runs for, in the cr
 * service), and in the tree to be saved (the target alone when not
 * `whole`) a process another tracer holds or that the kernel does not let cr trace, with every
 * such process named at once. The seize would otherwise find these one by one, with the
 * processes before them already stopped.
 */
export function refuseUntraceable(kernel: TraceView, pid: number, whole: boolean, selves: readonly number[] = crProcesses()): void {
  const { comm } = kernel.procfs.assertUserProcess(pid);
  const target = `PID ${pid} (${comm})`;
  if (pid === 1) {
    throw new TargetError(
      `cannot checkpoint ${target}: it is ${initialPidNamespace(kernel) ? "this system's init process" : 'the init process of the PID namespace cr runs in'}, which holds PID 1 for as long as the system runs (a restore could never give it back) and whose tree holds every process, cr included; checkpoint a process tree below it`,
    );
  }
  const tgid = kernel.procfs.status(pid).tgid;
  for (const [i, self] of selves.entries()) {
    if (pid === self || tgid === self) {
      const what = i === 0 ? 'the process cr itself runs in' : 'the process that ran this cr command (the cr service runs it)';
      throw new TargetError(`cannot checkpoint ${target}: it is ${what}, which cr cannot freeze; checkpoint it from another process`);
    }
    if (ancestorsOf(kernel, self).includes(pid)) {
      const who = i === 0 ? `cr (PID ${self})` : `the cr command (PID ${self}, run by the cr service)`;
      throw new TargetError(`cannot checkpoint ${target}: ${who} runs below it, and cr cannot freeze a tree it runs in; run cr from outside that tree (from another terminal, say), or checkpoint a process beside cr`);
    }
  }
  const yama = yamaRefusal(kernel.sysctl, kernel.procfs.hasCapability(CAP_SYS_PTRACE), false);
  if (yama) throw new TargetError(`cannot checkpoint ${target}: ${yama}`);
  const problems = (whole ? treeOf(kernel, pid) : [pid]).flatMap((p) => traceProblem(kernel, p) ?? []);
  if (problems.length > 0) throw new TargetError(`cannot checkpoint ${target}: ${describeProblems(kernel, pid, problems)}`);
}

/**
 * A clear error for a freeze that failed on a kernel call about a process, when the process
 * explains it: it exited meanwhile, another tracer took it, the kernel does not let cr trace
 * it. Undefined when the error is not of that kind, or nothing explains it.
 */
export function explainFreezeFailure(kernel: TraceView, err: unknown): TargetError | undefined {
  if (!(err instanceof KernelError)) return undefined;
  const tid = Number(/^pid (\d+)$/.exec(err.target ?? '')?.[1] ?? /^\/proc\/(\d+)\//.exec(err.target ?? '')?.[1] ?? Number.NaN);
  if (!Number.isInteger(tid)) return undefined;
  const pid = processOf(kernel, tid);
  const comm = commOf(kernel, pid);
  const target = comm === undefined ? `PID ${pid}` : `PID ${pid} (${comm})`;
  if (!kernel.procfs.isRunning(pid)) {
    return new TargetError(`${target} exited while cr was freezing it; it has nothing left to checkpoint`, { cause: err });
  }
  if (err.syscall !== 'ptrace(PTRACE_SEIZE)' || err.code !== 'EPERM') return undefined;
  const problem = traceProblem(kernel, pid);
  if (problem) return new TargetError(`cannot checkpoint ${target}: ${describeProblems(kernel, pid, [problem])}`, { cause: err });
  const yama = yamaRefusal(kernel.sysctl, kernel.procfs.hasCapability(CAP_SYS_PTRACE), true);
  if (yama) return new TargetError(`cannot checkpoint ${target}: ${yama}`, { cause: err });
  return new TargetError(
    `cannot checkpoint ${target}: the kernel refused to let cr trace it (${err.syscall}: ${err.code}), and neither another tracer nor a missing permission cr can see explains it; a security module may forbid it`,
    { cause: err },
  );
}

/**
 * What Yama's ptrace_scope forbids cr, if anything: 3 forbids every attach, 2 every attach
 * without CAP_SYS_PTRACE. Scope 1 (a process without it traces only its descendants, or a
 * process that allowed it with prctl(PR_SET_PTRACER), which /proc does not show) is named only
 * when `seizeFailed`: only the seize tells.
 */
function yamaRefusal(sysctl: TraceView['sysctl'], hasPtraceCap: boolean, seizeFailed: boolean): string | undefined {
  if (!sysctl.exists(YAMA_SCOPE)) return undefined;
  const scope = sysctl.read(YAMA_SCOPE);
  if (scope === '3') {
    return `${YAMA_SCOPE} is 3 on this system, which forbids every ptrace attach until the next reboot, and cr freezes a process with ptrace; checkpoint on a system without that setting`;
  }
  if (hasPtraceCap) return undefined;
  if (scope === '2') return `${YAMA_SCOPE} is 2, which lets only a process with CAP_SYS_PTRACE trace another, and cr lacks it; run cr as root`;
  if (scope === '1' && seizeFailed) {
    return `${YAMA_SCOPE} is 1, which lets a process without CAP_SYS_PTRACE trace only its own descendants (or a process that allowed it with prctl(PR_SET_PTRACER)), and cr lacks CAP_SYS_PTRACE; run cr as root`;
  }
  return undefined;
}

/** What keeps cr from tracing a live process: a tracer holds one of its threads, or the kernel denies cr access to it. */
type TraceProblem = { pid: number; comm: string } & ({ kind: 'traced'; tid: number; tracer: number } | { kind: 'denied' });

function traceProblem(kernel: TraceView, pid: number): TraceProblem | undefined {
  const comm = commOf(kernel, pid);
  if (comm === undefined || !kernel.procfs.isRunning(pid)) return undefined;
  for (const tid of threadIds(pid)) {
    const tracer = tracerOf(kernel, tid);
    // cr's own hold (a pre-copy's) is not another tracer's.
    if (tracer && tracer !== process.pid) return { pid, comm, kind: 'traced', tid, tracer };
  }
  return accessDenied(kernel, pid) ? { pid, comm, kind: 'denied' } : undefined;
}

/**
 * The problems of the tree of `root`, each traced process on its own (each has its tracer) and
 * the processes the kernel denies cr together (they share the reason), on one line, or one line
 * each under a count.
 */
function describeProblems(kernel: TraceView, root: number, problems: readonly TraceProblem[]): string {
  const name = (p: TraceProblem) => (p.pid === root && problems.length === 1 ? 'it' : `PID ${p.pid} (${p.comm})`);
  const lines = problems.flatMap((p) => (p.kind === 'traced' ? [`${name(p)} ${describeTracer(kernel, p.tid, p.pid, p.tracer)}`] : []));
  const denied = problems.filter((p) => p.kind === 'denied');
  if (denied.length > 0) lines.push(describeDenial(kernel, denied.map(name)));
  return lines.length === 1 ? lines[0]! : `${problems.length} processes of its tree cannot be traced:\n${lines.map((l) => `  ${l}`).join('\n')}`;
}

function describeTracer(kernel: TraceView, tid: number, pid: number, tracer: number): string {
  const comm = commOf(kernel, tracer);
  const traced = tid === pid ? 'is being traced' : `has a thread (${tid}) being traced`;
  return `${traced} by PID ${tracer}${comm === undefined ? '' : ` (${comm})`}, and a process can have one tracer only; detach that debugger or tracer first`;
}

function describeDenial(kernel: TraceView, names: readonly string[]): string {
  const which = names.join(', ');
  if (!kernel.procfs.hasCapability(CAP_SYS_PTRACE)) {
    return `the kernel does not let cr trace ${which} (reading /proc/PID/exe fails with EACCES): tracing a process of another user, or one that changed its ids, needs CAP_SYS_PTRACE, which cr lacks; run cr as root`;
  }
  return `the kernel does not let cr trace ${which} (reading /proc/PID/exe fails with EACCES) although cr has CAP_SYS_PTRACE, so a security module or a sandbox cr runs in forbids it (Landlock, for one, lets a sandboxed process trace only processes of its own sandbox); run cr outside that sandbox`;
}

/**
 * Whether the kernel's ptrace access check refuses cr `pid`: reading /proc/PID/exe makes the
 * same check (PTRACE_MODE_READ) that the seize makes to attach, security modules included.
 */
function accessDenied(kernel: TraceView, pid: number): boolean {
  try {
    kernel.procfs.link(pid, 'exe');
    return false;
  } catch (err) {
    return err instanceof KernelError && err.code === 'EACCES';
  }
}

/** The process `pid` and every process below it; processes that vanish while listed are left out. */
function treeOf(kernel: TraceView, pid: number): number[] {
  const found: number[] = [];
  for (const queue = [pid]; queue.length > 0; ) {
    const next = queue.shift()!;
    found.push(next);
    try {
      queue.push(...kernel.procfs.children(next));
    } catch {
      // Gone meanwhile: the freeze finds out whether that matters.
    }
  }
  return found;
}

/** The parent, grandparent … of `pid`, up to PID 1 (or to a parent outside cr's PID namespace, shown as 0). */
function ancestorsOf(kernel: TraceView, pid: number): number[] {
  const found: number[] = [];
  for (let at = kernel.procfs.stat(pid).ppid; at > 0 && !found.includes(at); at = kernel.procfs.stat(at).ppid) found.push(at);
  return found;
}

function initialPidNamespace(kernel: TraceView): boolean {
  const ns = kernel.namespaces.current('pid');
  try {
    return ns.inode === INITIAL_PID_NS_INODE;
  } finally {
    ns.close();
  }
}

/** The process a thread id belongs to (itself for a main thread, or when it is gone). */
function processOf(kernel: TraceView, tid: number): number {
  try {
    return kernel.procfs.status(tid).tgid || tid;
  } catch {
    return tid;
  }
}

function tracerOf(kernel: TraceView, tid: number): number {
  try {
    return kernel.procfs.status(tid).tracerPid;
  } catch {
    return 0;
  }
}

function commOf(kernel: TraceView, pid: number): string | undefined {
  try {
    return kernel.procfs.stat(pid).comm;
  } catch {
    return undefined;
  }
}
