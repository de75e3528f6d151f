import { readFileSync } from 'node:fs';
import { SHM_LOCKED, type Kernel, type NamespaceHandle } from '@cr/core';
import { type CheckedImage } from '@cr/core/engine';
import type { IpcNsRecord } from '@cr/plugin-ipc-ns';
import type { MsgRecord } from '@cr/plugin-sysvipc-msg';
import type { SemRecord } from '@cr/plugin-sysvipc-sem';
import type { ShmRecord } from '@cr/plugin-sysvipc-shm';

/**
 * Everything about the SysV objects of an IPC namespace that cr restores, in a form two states
 * can be compared in: ids, keys (unsigned), permission bits, owners and creators, a segment's
 * size, SHM_LOCKED and contents, a queue's msg_qbytes and messages, a set's values.
 * (SHM_DEST is left out: cr does not restore it.)
 */
export interface SysvState {
  shm: { id: number; key: number; mode: number; uid: number; gid: number; cuid: number; cgid: number; size: number; locked: boolean; contents: string }[];
  msg: { id: number; key: number; mode: number; uid: number; gid: number; cuid: number; cgid: number; qbytes: number; messages: { type: number; data: string }[] }[];
  sem: { id: number; key: number; mode: number; uid: number; gid: number; cuid: number; cgid: number; values: number[] }[];
}

const encoded = (data: Uint8Array) => Buffer.from(data).toString('base64');
const byId = <T extends { id: number }>(list: T[]) => list.sort((a, b) => a.id - b.id);
/** A key_t held signed (as the kernel prints it) as the unsigned number; any other number stays as it is. */
const unsigned = (key: number) => (key < 0 && key >= -(2 ** 31) ? key + 2 ** 32 : key);
const owners = (o: { id: number; key: number; mode: number; uid: number; gid: number; cuid: number; cgid: number }) => ({
  id: o.id,
  key: unsigned(o.key),
  mode: o.mode & 0o777,
  uid: o.uid,
  gid: o.gid,
  cuid: o.cuid,
  cgid: o.cgid,
});

/** What the namespace holds, read from the kernel. */
export function sysvStateOf(kernel: Kernel, ns: NamespaceHandle): SysvState {
  const ipc = kernel.sysvipc;
  return kernel.namespaces.within(ns, () => ({
    shm: byId(
      ipc.list('shm').map((o) => {
        const mapping = ipc.shmAttach(o.id, o.size, true);
        try {
          return { ...owners(o), size: o.size, locked: (o.mode & SHM_LOCKED) !== 0, contents: encoded(mapping.view()) };
        } finally {
          mapping.detach();
        }
      }),
    ),
    msg: byId(
      ipc.list('msg').map((o) => ({
        ...owners(o),
        qbytes: ipc.msgQbytes(o.id),
        messages: ipc.msgCopyAll(o.id, o.qnum, o.cbytes).map((m) => ({ type: m.type, data: encoded(m.data) })),
      })),
    ),
    sem: byId(ipc.list('sem').map((o) => ({ ...owners(o), values: ipc.semGetAll(o.id, o.nsems) }))),
  }));
}

/**
 * What the namespace must hold once `image` is restored into an empty one: exactly what its
 * records say, with the contents of its blobs (read through the image's digests). Throws when
 * the image cannot be restored as it says: a corrupt blob, or one whose length contradicts its
 * record (a segment's size, the sizes of a queue's messages).
 */
export function sysvStateOfImage(image: CheckedImage): SysvState {
  const { reader, records } = image;
  const of = <R>(type: string) => records.filter((r) => r.entry.type === type).map((r) => ({ key: r.entry.key, record: r.record as R, blob: (name: string) => reader.readFile(r.entry.blobs![name]!) }));
  const sized = (key: string, data: Buffer, size: number) => {
    if (data.length !== size) throw new Error(`${key}: the record says ${size} bytes, its blob holds ${data.length}`);
    return data;
  };
  return {
    shm: byId(
      of<ShmRecord>('sysvipc-shm').map(({ key, record, blob }) => ({
        ...owners(record),
        size: record.size,
        locked: record.locked,
        contents: encoded(segmentOf(key, blob('contents'), record)),
      })),
    ),
    msg: byId(
      of<MsgRecord>('sysvipc-msg').map(({ key, record, blob }) => {
        const payload = sized(key, blob('messages'), record.messages.reduce((sum, m) => sum + m.size, 0));
        let offset = 0;
        const messages = record.messages.map((m) => ({ type: m.type, data: encoded(payload.subarray(offset, (offset += m.size))) }));
        return { ...owners(record), qbytes: record.qbytes, messages };
      }),
    ),
    sem: byId(of<SemRecord>('sysvipc-sem').map(({ record }) => ({ ...owners(record), values: record.values }))),
  };
}

/** The whole segment a shm record and its blob stand for: the blob's bytes at the record's ranges, zeros elsewhere. */
function segmentOf(key: string, blob: Buffer, record: ShmRecord): Buffer {
  const ranges = record.ranges ?? [{ offset: 0, length: record.size }];
  const saved = ranges.reduce((sum, r) => sum + r.length, 0);
  if (blob.length !== saved) throw new Error(`${key}: the record says ${saved} bytes, its blob holds ${blob.length}`);
  const segment = Buffer.alloc(record.size);
  let offset = 0;
  for (const r of ranges) segment.set(blob.subarray(offset, (offset += r.length)), r.offset);
  return segment;
}

/** The `kernel.*` IPC sysctls of a namespace, as an ipc-ns record holds them. */
export function ipcSysctlsOf(kernel: Kernel, ns: NamespaceHandle, names: readonly string[]): IpcNsRecord['sysctls'] {
  return kernel.namespaces.within(ns, () =>
    Object.fromEntries(names.map((name) => [name, readFileSync(`/proc/sys/kernel/${name}`, 'utf8').trim().replace(/\s+/g, ' ')])),
  );
}

/** Removes every SysV object of the namespace. */
export function emptyNamespace(kernel: Kernel, ns: NamespaceHandle): void {
  kernel.namespaces.within(ns, () => {
    for (const kind of ['shm', 'msg', 'sem'] as const) for (const o of kernel.sysvipc.list(kind as 'shm')) kernel.sysvipc.remove(kind, o.id);
  });
}
