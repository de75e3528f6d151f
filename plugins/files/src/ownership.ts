import type { CollectedObject, FdInfo, OpaqueFdKind } from '@cr/core';

/**
 * What a process's stdio may point to outside the checkpoint and be given again at restore from
 * cr restore's own descriptor (or --inherit-fd): the terminal or pipe of the shell that started
 * it, a socket of its supervisor, a named pipe, a disk.
 */
const INHERITABLE = new Set<OpaqueFdKind>(['terminal', 'pipe', 'fifo', 'socket', 'block-device']);

/** Stdio that points outside the checkpoint, saved as "inherited". */
export function isInheritable(info: FdInfo): boolean {
  return info.fd <= 2 && 'what' in info.kind && INHERITABLE.has(info.kind.kind);
}

/** The message that refuses descriptor `info` of `pid` when no plugin claims it. */
export function unsupportedFd(pid: number, info: FdInfo): string {
  const what = 'what' in info.kind ? info.kind.what : info.link;
  const stdio = info.fd <= 2 ? '; as stdio, only a terminal, pipe, socket or disk is given again at restore' : '';
  return (
    `PID ${pid}: fd ${info.fd} is ${what}, which cr cannot checkpoint yet (no installed plugin claims fd:${pid}:${info.fd}${stdio}); ` +
    `leave it out with --exclude files:fd=${info.fd} (the restored program will find it closed)`
  );
}

/**
 * Who owns descriptor `info`: the files plugin claims what it saves (files it reopens by path,
 * deleted files it recreates, and their dups); anything else it leaves to a plugin that claims
 * it, and otherwise saves it only as inherited stdio (or a dup of that), or refuses it.
 */
export function ownership(pid: number, info: FdInfo, twin: FdInfo | undefined): Pick<CollectedObject, 'claims' | 'defers'> {
  const object = `fd:${pid}:${info.fd}`;
  const original = twin ?? info;
  if ('path' in original.kind) return { claims: [object] };
  if (isInheritable(original)) return { defers: { object } };
  return { defers: { object, unsupported: unsupportedFd(pid, info) } };
}
