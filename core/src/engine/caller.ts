let caller: number | undefined;

/**
 * Names the process a command runs for when that is not cr's own process (the cr service runs
 * commands for the processes that hand them to it), or clears it with undefined. cr must not
 * freeze its caller, or a tree it runs in, any more than it may freeze itself.
 */
export function setCaller(pid: number | undefined): void {
  caller = pid;
}

/** cr's own process, and the caller the command runs for, if it runs in another process. */
export function crProcesses(): number[] {
  return caller === undefined ? [process.pid] : [process.pid, caller];
}
