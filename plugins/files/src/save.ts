import { closeSync, openSync } from 'node:fs';
import { O_RDONLY } from 'node:constants';
import { Kernel, O_CLOEXEC, UnsupportedError, readRegions, type FdInfo, type SaveContext } from '@cr/core';
import type { FilesRecord } from '@cr/schemas';
import { kindOf } from './kinds.js';

/** How one descriptor is saved. Descriptors sharing a description with a lower one become duplicates. */
export async function saveFd(kernel: Kernel, pid: number, info: FdInfo, lower: readonly FdInfo[], ctx: SaveContext): Promise<FilesRecord> {
  const { fd } = info;
  const closeOnExec = (info.flags & O_CLOEXEC) !== 0;
  const flags = info.flags & ~O_CLOEXEC;
  const twin = lower.find((l) => l.link === info.link && kernel.libc.kcmpFiles(pid, l.fd, pid, fd) === 0);
  if (twin) return { kind: 'duplicate', fd, closeOnExec, of: twin.fd };
  const found = kindOf(pid, fd, info.link);
  const offset = String(info.pos);
  switch (found.kind) {
    case 'file':
      return { kind: 'file', fd, closeOnExec, path: found.path, flags, offset, size: Number(found.st.size) };
    case 'directory':
      return { kind: 'directory', fd, closeOnExec, path: found.path, flags, offset };
    case 'device':
      return { kind: 'device', fd, closeOnExec, path: found.path, flags, offset, rdev: Number(found.st.rdev) };
    case 'deleted': {
      const local = openSync(`/proc/${pid}/fd/${fd}`, O_RDONLY);
      try {
        await ctx.writeBlob('contents', readRegions(local, [{ position: 0, length: Number(found.st.size) }], `deleted file ${found.path} (fd ${fd} of PID ${pid})`));
      } finally {
        closeSync(local);
      }
      return { kind: 'deleted', fd, closeOnExec, path: found.path, flags, offset, mode: Number(found.st.mode & 0o7777n), size: Number(found.st.size) };
    }
    case 'external':
      if (fd <= 2) return { kind: 'inherited', fd, closeOnExec, flags, description: info.link };
      throw new UnsupportedError(
        `PID ${pid}: fd ${fd} is ${found.what}, which cr cannot checkpoint yet; leave it out with --exclude files:fd=${fd} (the restored program will find it closed)`,
      );
  }
}
