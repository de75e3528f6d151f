import { UnsupportedError, type Kernel, type ProcessStatus, type RemoteTask, type SeccompFilter } from '@cr/core';
import type { LiveTaskRecord, ThreadRecord } from './record.js';

type SeccompRecord = NonNullable<ThreadRecord['seccomp']>;
type FilterRecord = Extract<SeccompRecord, { mode: 'filter' }>['filters'][number];

const SECCOMP_MODE_STRICT = 1;
const SECCOMP_MODE_FILTER = 2;

/** The seccomp state of stopped thread `task`, whose /proc status is `status`: nothing when it has none. */
export function seccompOf(task: RemoteTask, status: ProcessStatus): Pick<ThreadRecord, 'seccomp'> {
  if (status.seccomp === SECCOMP_MODE_STRICT) return { seccomp: { mode: 'strict' } };
  if (status.seccomp !== SECCOMP_MODE_FILTER) return {};
  const filters = task.seccompFilters(status.seccompFilters).map(({ program, log }) => ({ program: program.toString('base64'), log }));
  return { seccomp: { mode: 'filter', filters } };
}

/**
 * Whether cr itself runs under seccomp: its calls inside a process under seccomp pass only while
 * cr suspends it, which the kernel refuses to a tracer under seccomp.
 */
export function crUnderSeccomp(kernel: Kernel): boolean {
  return kernel.procfs.status(process.pid).seccomp !== 0;
}

/**
 * Before anything is restored: cr gives a process its seccomp state while it still works in it,
 * which the kernel lets through only while cr suspends it, and suspending is refused to a cr under
 * seccomp itself.
 */
export function checkSeccompRestorable(kernel: Kernel, record: LiveTaskRecord): void {
  const mode = [record.seccomp, ...(record.threads ?? []).map((t) => t.seccomp)].find((s) => s !== undefined)?.mode;
  if (mode === undefined || !crUnderSeccomp(kernel)) return;
  throw new UnsupportedError(
    `cannot restore PID ${record.pid}: it ran under seccomp (${mode} mode), and cr runs under seccomp itself, so the kernel would not let cr suspend it while cr works in the process; run cr restore outside any seccomp sandbox`,
  );
}

/**
 * The filters every one of a process's threads has first, in the same order: given to the main
 * thread before it makes the others, which inherit them. So the threads share those filters again,
 * as they did when the program made them before installing any, or installed them with
 * SECCOMP_FILTER_FLAG_TSYNC; the kernel lets a later TSYNC through only for threads that share.
 */
export function sharedSeccompFilters(threads: readonly (SeccompRecord | undefined)[]): FilterRecord[] {
  const chains = threads.map((s) => (s?.mode === 'filter' ? s.filters : []));
  const [first = [], ...rest] = chains;
  let shared = 0;
  while (shared < first.length && rest.every((chain) => shared < chain.length && sameFilter(chain[shared]!, first[shared]!))) shared++;
  return first.slice(0, shared);
}

/** Installs `filters` on `task`, oldest first. */
export function installSeccompFilters(task: RemoteTask, filters: readonly FilterRecord[]): void {
  for (const filter of filters) task.installSeccompFilter(toFilter(filter));
}

/** What a thread has of its own beyond the `shared` filters it inherited: its other filters, or strict mode. */
export function restoreOwnSeccomp(task: RemoteTask, seccomp: SeccompRecord | undefined, shared: number): void {
  if (seccomp?.mode === 'strict') task.enterSeccompStrict();
  else if (seccomp?.mode === 'filter') installSeccompFilters(task, seccomp.filters.slice(shared));
}

function sameFilter(a: FilterRecord, b: FilterRecord): boolean {
  return a.program === b.program && a.log === b.log;
}

function toFilter(filter: FilterRecord): SeccompFilter {
  return { program: Buffer.from(filter.program, 'base64'), log: filter.log };
}
