import { readFileSync } from 'node:fs';
import { UnsupportedError } from '../errors.js';
import { Libc, type ShmMapping } from './libc.js';
import type { Sysctl } from './sysctl.js';
import { IPC_STAT_SIZE, decodeStruct, ipcPermHead, msqid64Ds, patchStruct, structSize } from './structs.js';
import { SHM_RDONLY } from './syscalls.js';

export type IpcKind = 'shm' | 'msg' | 'sem';

/** What `list` gives for each kind of object. */
export type IpcInfoOf<K extends IpcKind> = { shm: ShmInfo; msg: MsgInfo; sem: SemInfo }[K];

const IPC_CREAT = 0o1000;
const IPC_EXCL = 0o2000;
const IPC_NOWAIT = 0o4000;
const IPC_RMID = 0;
const IPC_SET = 1;
const IPC_STAT = 2;
const SHM_LOCK = 11;
const MSG_COPY = 0o40000;
const GETALL = 13;
const SETALL = 17;
const ENOMSG = 42;
/** Flags the kernel keeps in an shm segment's mode beside the permission bits. */
export const SHM_DEST = 0o1000;
export const SHM_LOCKED = 0o2000;


export interface IpcOwnership {
  uid: number;
  gid: number;
  cuid: number;
  cgid: number;
  /** Permission bits plus, for shm, SHM_DEST and SHM_LOCKED. */
  mode: number;
}

export interface IpcObjectInfo extends IpcOwnership {
  kind: IpcKind;
  key: number;
  id: number;
}
export interface ShmInfo extends IpcObjectInfo {
  size: number;
  nattch: number;
}
export interface MsgInfo extends IpcObjectInfo {
  cbytes: number;
  qnum: number;
}
export interface SemInfo extends IpcObjectInfo {
  nsems: number;
}

export interface QueuedMessage {
  type: number;
  data: Buffer;
}

/**
 * SysV IPC objects of the IPC namespace of the *calling thread*: call these inside
 * Namespaces.within(). Ids and keys are what ipcs shows (keys unsigned); errors name the object.
 */
export class SysvIpc {
  constructor(
    private readonly libc: Libc,
    private readonly sysctl: Sysctl,
  ) {}

  list<K extends IpcKind>(kind: K): IpcInfoOf<K>[];
  list(kind: IpcKind): IpcObjectInfo[] {
    // /proc/sysvipc/* shows the objects of the reader's IPC namespace; read on this thread.
    const lines = readFileSync(`/proc/sysvipc/${kind}`, 'utf8').trim().split('\n').slice(1);
    return lines.map((line) => {
      const f = line.trim().split(/\s+/).map(Number);
      // /proc/sysvipc prints key_t signed; keys are unsigned to users (ipcs, ftok) and to cr.
      const base = { kind, key: f[0]! >>> 0, id: f[1]!, mode: Number.parseInt(line.trim().split(/\s+/)[2]!, 8) };
      if (kind === 'shm') return { ...base, size: f[3]!, nattch: f[6]!, uid: f[7]!, gid: f[8]!, cuid: f[9]!, cgid: f[10]! } satisfies ShmInfo;
      if (kind === 'msg') return { ...base, cbytes: f[3]!, qnum: f[4]!, uid: f[7]!, gid: f[8]!, cuid: f[9]!, cgid: f[10]! } satisfies MsgInfo;
      return { ...base, nsems: f[3]!, uid: f[4]!, gid: f[5]!, cuid: f[6]!, cgid: f[7]! } satisfies SemInfo;
    });
  }

  /** Makes the next object of `kind` created in this namespace get exactly `id`. */
  setNextId(kind: IpcKind, id: number): void {
    this.sysctl.write(`kernel.${kind}_next_id`, String(id));
  }

  /**
   * Runs `create` with the calling thread's effective uid and gid set to the saved creator's, so
   * that the new object's cuid and cgid (which the kernel fixes at creation and IPC_SET cannot
   * change) are the saved ones; the thread's own ids are back before this returns or throws.
   * Write `*_next_id` before: as another user the thread may not.
   */
  asCreator<T>(creator: Pick<IpcOwnership, 'cuid' | 'cgid'>, create: () => T): T {
    const euid = process.geteuid!();
    const egid = process.getegid!();
    if (creator.cuid === euid && creator.cgid === egid) return create();
    this.libc.setThreadEgid(creator.cgid);
    try {
      this.libc.setThreadEuid(creator.cuid);
      try {
        return create();
      } finally {
        this.libc.setThreadEuid(euid);
      }
    } finally {
      this.libc.setThreadEgid(egid);
    }
  }

  shmCreate(key: number, size: number, mode: number): number {
    return this.libc.shmget(key, size, IPC_CREAT | IPC_EXCL | (mode & 0o777), `shm key ${hex(key)}`);
  }

  /** Attaches a segment; the mapping stays usable from any namespace until detached. */
  shmAttach(id: number, size: number, readOnly: boolean): ShmMapping {
    return this.libc.shmat(id, size, readOnly ? SHM_RDONLY : 0);
  }

  shmLock(id: number): void {
    this.libc.shmctl(id, SHM_LOCK, null, 'shmctl(SHM_LOCK)');
  }

  msgCreate(key: number, mode: number): number {
    return this.libc.msgget(key, IPC_CREAT | IPC_EXCL | (mode & 0o777), `msg key ${hex(key)}`);
  }

  msgQbytes(id: number): number {
    const buf = Buffer.alloc(structSize(msqid64Ds));
    this.libc.msgctl(id, IPC_STAT, buf, 'msgctl(IPC_STAT)');
    return Number(decodeStruct<{ msg_qbytes: number | bigint }>(buf, msqid64Ds).msg_qbytes);
  }

  setMsgQbytes(id: number, qbytes: number): void {
    const buf = Buffer.alloc(structSize(msqid64Ds));
    this.libc.msgctl(id, IPC_STAT, buf, 'msgctl(IPC_STAT)');
    patchStruct(buf, msqid64Ds, { msg_qbytes: BigInt(qbytes) });
    this.libc.msgctl(id, IPC_SET, buf, 'msgctl(IPC_SET msg_qbytes)');
  }

  /**
   * Every message of a queue, in queue order, read with MSG_COPY: the queue is left exactly as it
   * was. `maxSize` bounds one message (the queue's byte count is always enough).
   */
  msgCopyAll(id: number, count: number, maxSize: number): QueuedMessage[] {
    const buf = Buffer.alloc(8 + Math.max(maxSize, 1));
    const messages: QueuedMessage[] = [];
    for (let i = 0; i < count; i++) {
      const n = this.libc.msgrcv(id, buf, buf.length - 8, i, MSG_COPY | IPC_NOWAIT, [ENOMSG]);
      if (n < 0) break;
      const type = buf.readBigInt64LE(0);
      if (type > BigInt(Number.MAX_SAFE_INTEGER)) {
        // A record holds the type as a JSON number: refuse rather than save a rounded one.
        throw new UnsupportedError(`msg id ${id}: message ${i} has type ${type}, above 2^53-1, which cr's msg record cannot hold exactly`);
      }
      messages.push({ type: Number(type), data: Buffer.from(buf.subarray(8, 8 + n)) });
    }
    return messages;
  }

  msgSend(id: number, message: QueuedMessage): void {
    const buf = Buffer.alloc(8 + message.data.length);
    buf.writeBigInt64LE(BigInt(message.type), 0);
    message.data.copy(buf, 8);
    this.libc.msgsnd(id, buf, message.data.length, IPC_NOWAIT);
  }

  semCreate(key: number, nsems: number, mode: number): number {
    return this.libc.semget(key, nsems, IPC_CREAT | IPC_EXCL | (mode & 0o777), `sem key ${hex(key)}`);
  }

  semGetAll(id: number, nsems: number): number[] {
    const buf = Buffer.alloc(2 * nsems);
    this.libc.semctl(id, GETALL, buf, 'semctl(GETALL)');
    return Array.from({ length: nsems }, (_, i) => buf.readUInt16LE(2 * i));
  }

  semSetAll(id: number, values: readonly number[]): void {
    const buf = Buffer.alloc(2 * values.length);
    values.forEach((v, i) => buf.writeUInt16LE(v, 2 * i));
    this.libc.semctl(id, SETALL, buf, 'semctl(SETALL)');
  }

  /** Sets owner uid/gid and permission bits (creator ids are fixed by the kernel at creation). */
  setOwnership(kind: IpcKind, id: number, owner: Pick<IpcOwnership, 'uid' | 'gid' | 'mode'>): void {
    const buf = Buffer.alloc(IPC_STAT_SIZE);
    this.ctl(kind, id, IPC_STAT, buf, 'IPC_STAT');
    patchStruct(buf, ipcPermHead, { uid: owner.uid, gid: owner.gid, mode: owner.mode & 0o777 });
    this.ctl(kind, id, IPC_SET, buf, 'IPC_SET');
  }

  remove(kind: IpcKind, id: number): void {
    this.ctl(kind, id, IPC_RMID, null, 'IPC_RMID');
  }

  private ctl(kind: IpcKind, id: number, cmd: number, buf: Buffer | null, name: string): void {
    if (kind === 'shm') this.libc.shmctl(id, cmd, buf, `shmctl(${name})`);
    else if (kind === 'msg') this.libc.msgctl(id, cmd, buf, `msgctl(${name})`);
    else this.libc.semctl(id, cmd, buf, `semctl(${name})`);
  }
}

export function hex(key: number): string {
  return `0x${(key >>> 0).toString(16).padStart(8, '0')}`;
}
