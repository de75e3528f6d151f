import 'reflect-metadata';
import { Kernel, KernelError, UnsupportedError, type NamespaceHandle } from '@cr/core';
import { Libc } from '@cr/core/engine';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * The kernel layer's SysV IPC service, called from this test process inside an IPC namespace of
 * its own (never the host's): every object dies with the namespace when the handle is closed.
 */
const kernel = new Kernel();
const ipc = kernel.sysvipc;
let ns: NamespaceHandle;
const inNs = <T>(fn: () => T): T => kernel.namespaces.within(ns, fn);

beforeAll(() => {
  ns = kernel.namespaces.create('ipc');
});
afterAll(() => {
  ns.close();
  // Every object above lived in the test's own namespace: none may show in the host's.
  const hostKeys = ['shm', 'msg', 'sem'].flatMap((kind) => ipc.list(kind as 'shm').map((o) => o.key));
  expect(hostKeys.filter((k) => k >>> 8 === 0x7e5700)).toEqual([]);
});

describe('SysvIpc (kernel layer)', () => {
  it('leaves the calling thread in its own namespace: objects made inside are not seen outside', () => {
    const id = inNs(() => ipc.msgCreate(0x7e570001, 0o600));
    expect(inNs(() => ipc.list('msg')).map((q) => q.id)).toContain(id);
    expect(ipc.list('msg').some((q) => q.key === 0x7e570001)).toBe(false);
    inNs(() => ipc.remove('msg', id));
  });

  it('reads every message with MSG_COPY in order, 0 bytes to msgmax, and leaves the queue as it was', () => {
    inNs(() => {
      const msgmax = Number(kernel.sysctl.read('kernel.msgmax'));
      // New queues take their msg_qbytes from msgmnb (twice msgmax by default): room for all.
      kernel.sysctl.write('kernel.msgmnb', String(4 * msgmax));
      const id = ipc.msgCreate(0x7e570002, 0o600);
      try {
        const sent = [0, msgmax, 1, 17, msgmax - 1].map((size, i) => ({ type: i + 1, data: Buffer.alloc(size, i + 1) }));
        for (const m of sent) ipc.msgSend(id, m);
        const [before] = ipc.list('msg').filter((q) => q.id === id);
        expect(before).toMatchObject({ qnum: sent.length });
        const copied = ipc.msgCopyAll(id, before!.qnum, before!.cbytes);
        expect(copied.map((m) => [m.type, m.data.length])).toEqual(sent.map((m) => [m.type, m.data.length]));
        expect(copied.every((m, i) => m.data.equals(sent[i]!.data))).toBe(true);
        expect(ipc.list('msg').find((q) => q.id === id)).toEqual(before);
      } finally {
        ipc.remove('msg', id);
      }
    });
  });

  it('refuses a message type a record cannot hold exactly', () => {
    inNs(() => {
      const id = ipc.msgCreate(0x7e570003, 0o600);
      try {
        ipc.msgSend(id, { type: Number.MAX_SAFE_INTEGER, data: Buffer.alloc(1) });
        expect(ipc.msgCopyAll(id, 1, 1)[0]!.type).toBe(Number.MAX_SAFE_INTEGER);
        const big = Buffer.alloc(9);
        big.writeBigInt64LE(2n ** 62n, 0);
        new Libc().msgsnd(id, big, 1, 0);
        expect(() => ipc.msgCopyAll(id, 2, 1)).toThrowError(UnsupportedError);
      } finally {
        ipc.remove('msg', id);
      }
    });
  });

  it('creates objects with a chosen id, as a chosen creator, and sets owners and mode', () => {
    inNs(() => {
      for (const [kind, create] of [
        ['shm', () => ipc.shmCreate(0x7e570004, 4096, 0o600)],
        ['msg', () => ipc.msgCreate(0x7e570004, 0o600)],
        ['sem', () => ipc.semCreate(0x7e570004, 3, 0o600)],
      ] as const) {
        const wanted = 5 * 32768 + 7;
        ipc.setNextId(kind, wanted);
        const id = ipc.asCreator({ cuid: 1234, cgid: 2345 }, create);
        try {
          expect(id).toBe(wanted);
          ipc.setOwnership(kind, id, { uid: 3456, gid: 4567, mode: 0o640 });
          const info = (ipc.list(kind as 'shm') as { id: number }[]).find((o) => o.id === id);
          expect(info).toMatchObject({ key: 0x7e570004, uid: 3456, gid: 4567, cuid: 1234, cgid: 2345, mode: 0o640 });
        } finally {
          ipc.remove(kind, id);
        }
      }
      // The thread is root again: it may write the sysctl, and what it creates is root's.
      ipc.setNextId('sem', 9);
      const id = ipc.semCreate(0x7e570005, 1, 0o600);
      expect(id).toBe(9);
      expect(ipc.list('sem').find((o) => o.id === 9)).toMatchObject({ uid: 0, gid: 0, cuid: 0, cgid: 0 });
      ipc.remove('sem', id);
    });
  });

  it('gives a zero-copy view of an attached segment, usable outside the namespace', () => {
    const id = inNs(() => ipc.shmCreate(0x7e570005, 1 << 20, 0o600));
    const writer = inNs(() => ipc.shmAttach(id, 1 << 20, false));
    const reader = inNs(() => ipc.shmAttach(id, 1 << 20, true));
    try {
      // Outside the namespace now: the mappings belong to the process, not to a namespace.
      writer.view().fill(0xab, 1000, 2000);
      writer.view()[(1 << 20) - 1] = 7;
      const seen = reader.view();
      expect(seen.length).toBe(1 << 20);
      expect(seen[999]).toBe(0);
      expect(seen.subarray(1000, 2000).every((b) => b === 0xab)).toBe(true);
      expect(seen[(1 << 20) - 1]).toBe(7);
    } finally {
      writer.detach();
      reader.detach();
      inNs(() => ipc.remove('shm', id));
    }
  });

  it('reads and writes semaphore values', () => {
    inNs(() => {
      const id = ipc.semCreate(0x7e570006, 4, 0o600);
      try {
        ipc.semSetAll(id, [1, 32767, 0, 9]);
        expect(ipc.semGetAll(id, 4)).toEqual([1, 32767, 0, 9]);
      } finally {
        ipc.remove('sem', id);
      }
    });
  });

  it('throws KernelError naming the call, the errno and the object', () => {
    inNs(() => {
      const missing = 32767 * 32768 + 1;
      for (const [kind, call] of [
        ['shm', 'shmctl(IPC_RMID)'],
        ['msg', 'msgctl(IPC_RMID)'],
        ['sem', 'semctl(IPC_RMID)'],
      ] as const) {
        let error: unknown;
        try {
          ipc.remove(kind, missing);
        } catch (err) {
          error = err;
        }
        expect(error).toBeInstanceOf(KernelError);
        expect(error).toMatchObject({ syscall: call, code: 'EINVAL', target: `${kind} id ${missing}` });
      }
      const key = 0x7e570007;
      const id = ipc.msgCreate(key, 0o600);
      try {
        expect(() => ipc.msgCreate(key, 0o600)).toThrowError(/^msgget\(msg key 0x7e570007\): EEXIST/);
      } finally {
        ipc.remove('msg', id);
      }
      expect(() => ipc.shmAttach(missing, 4096, true)).toThrowError(`shmat(shm id ${missing}): EINVAL`);
    });
  });
});
