import { existsSync } from 'node:fs';
import type { Kernel } from '@cr/core';
import { crUnderSeccomp } from './seccomp.js';

/** Namespaces a process may only share with cr: no plugin saves these kinds yet. */
const UNSAVED_NAMESPACES = ['mnt', 'net', 'pid', 'user', 'cgroup'] as const;

/**
 * What cr cannot checkpoint yet about a process, every item naming it; read from /proc, so that a
 * dry run finds the same on a process that runs on. `alone`: the process is checkpointed without
 * its children (--no-tree), so it must have none.
 */
export function taskRefusals(kernel: Kernel, pid: number, alone: boolean): string[] {
  const { comm } = kernel.procfs.stat(pid);
  const status = kernel.procfs.status(pid);
  const who = `PID ${pid} (${comm})`;
  const refusals: string[] = [];
  // cr itself traces a process it froze.
  if (status.tracerPid !== 0 && status.tracerPid !== process.pid) refusals.push(`PID ${pid} is being traced by PID ${status.tracerPid} (${kernel.procfs.stat(status.tracerPid).comm}); detach that debugger or tracer first`);
  const children = alone ? kernel.procfs.children(pid) : [];
  if (children.length > 0) refusals.push(`${who} has child processes (${children.join(', ')}); --no-tree checkpoints a process alone: leave --no-tree out to save them with it`);
  if (status.seccomp !== 0 && crUnderSeccomp(kernel)) {
    refusals.push(`${who} runs under seccomp (mode ${status.seccomp}), and so does cr: the kernel lets only a cr outside any seccomp sandbox work inside it`);
  }
  const cwd = kernel.procfs.link(pid, 'cwd');
  if (!existsSync(cwd)) refusals.push(`${who} has a working directory that was removed (${cwd}); cr cannot restore it`);
  for (const kind of UNSAVED_NAMESPACES) {
    const ns = kernel.namespaces.ofProcess(pid, kind);
    try {
      if (!kernel.namespaces.isOwn(ns)) refusals.push(`${who} is in its own ${kind} namespace (${kind}:[${ns.inode}]), which cr cannot checkpoint yet`);
    } finally {
      ns.close();
    }
  }
  return refusals;
}
