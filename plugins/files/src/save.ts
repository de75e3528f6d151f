import { closeSync, openSync } from 'node:fs';
import { O_RDONLY } from 'node:constants';
import { O_CLOEXEC, UnsupportedError, readRegions, type DescriptionHolder, type FdInfo, type SaveContext, procDir } from '@cr/core';
import type { FilesRecord } from './record.js';
import { isInheritable, unsupportedFd } from './ownership.js';

/**
 * How one descriptor is saved. One that shares its open file with a lower one (`twin`) is a
 * duplicate of it; the other processes that hold its open file too are its `holders`.
 */
export async function saveFd(pid: number, info: FdInfo, twin: FdInfo | undefined, shared: readonly DescriptionHolder[], ctx: SaveContext): Promise<FilesRecord> {
  const { fd } = info;
  const closeOnExec = (info.flags & O_CLOEXEC) !== 0;
  const holders = shared.length > 0 ? { holders: shared.map((h) => ({ pid: h.pid, fds: [...h.fds] })) } : {};
  const flags = info.flags & ~O_CLOEXEC;
  if (twin) return { kind: 'duplicate', fd, closeOnExec, of: twin.fd };
  const found = info.kind;
  const offset = String(info.pos);
  switch (found.kind) {
    case 'file':
      return { kind: 'file', fd, closeOnExec, ...holders, path: found.path, flags, offset, size: Number(found.st.size) };
    case 'directory':
      return { kind: 'directory', fd, closeOnExec, ...holders, path: found.path, flags, offset };
    case 'device':
      return { kind: 'device', fd, closeOnExec, ...holders, path: found.path, flags, offset, rdev: Number(found.st.rdev) };
    case 'deleted': {
      const local = openSync(`${procDir(pid)}/fd/${fd}`, O_RDONLY);
      try {
        await ctx.writeBlob('contents', readRegions(local, [{ position: 0, length: Number(found.st.size) }], `deleted file ${found.path} (fd ${fd} of PID ${pid})`));
      } finally {
        closeSync(local);
      }
      const { st } = found;
      return { kind: 'deleted', fd, closeOnExec, ...holders, path: found.path, flags, offset, mode: Number(st.mode & 0o7777n), uid: Number(st.uid), gid: Number(st.gid), size: Number(st.size) };
    }
    default:
      if (isInheritable(info)) return { kind: 'inherited', fd, closeOnExec, ...holders, flags, description: info.link };
      // The engine refuses such a descriptor before anything is saved; this guards direct callers.
      throw new UnsupportedError(unsupportedFd(pid, info));
  }
}
