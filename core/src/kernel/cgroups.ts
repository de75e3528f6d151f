import { readFileSync, statfsSync, writeFileSync } from 'node:fs';
import { procDir } from './proc-dir.js';
import { nodeFsError } from './sysctl.js';

/** Where the unified (v2) hierarchy is mounted, as systemd and every current distribution mount it. */
const CGROUP2_ROOT = '/sys/fs/cgroup';
const CGROUP2_SUPER_MAGIC = 0x63677270;

/** Process membership in cgroups. */
export class Cgroups {
  /** The cgroups of `pid`, as /proc/PID/cgroup lists them: a line per hierarchy, `0::/path` for the unified one. */
  membership(pid: number): string {
    const path = `${procDir(pid)}/cgroup`;
    try {
      return readFileSync(path, 'utf8');
    } catch (err) {
      throw nodeFsError('read', path, err);
    }
  }

  /** Whether this machine runs the unified hierarchy alone (cgroup v2, no v1 controllers), at /sys/fs/cgroup. */
  unifiedOnly(): boolean {
    try {
      return statfsSync(CGROUP2_ROOT).type === CGROUP2_SUPER_MAGIC;
    } catch {
      return false;
    }
  }

  /**
   * Moves process `pid`, all its threads, into the unified-hierarchy cgroup of `membership` (what
   * `membership` gave for some process), on a machine where `unifiedOnly`.
   */
  move(pid: number, membership: string): void {
    const path = /^0::(\/.*)$/m.exec(membership)?.[1];
    if (path === undefined) throw new Error(`no cgroup of the unified hierarchy in ${JSON.stringify(membership.trim())}`);
    const procs = `${CGROUP2_ROOT}${path === '/' ? '' : path}/cgroup.procs`;
    try {
      writeFileSync(procs, `${pid}\n`);
    } catch (err) {
      throw nodeFsError('write', `${procs} (PID ${pid})`, err);
    }
  }
}
