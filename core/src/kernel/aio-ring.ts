import { TargetError } from '../errors.js';
import type { RemoteTask } from './remote-task.js';
import { encodeStruct, iocbStruct } from './structs.js';
import { SYS } from './syscalls.js';

/** struct aio_ring before its events (fs/aio.c): id, nr, head, tail, magic, compat and incompat features, header length. */
export const AIO_RING_HEADER = 32;
/** struct io_event. */
const IO_EVENT_SIZE = 32;
const AIO_RING_MAGIC = 0xa10a10a1;
const IOCB_CMD_PWRITE = 1;
/** io_submit(2) calls take at most this many requests each, so that their pointers fit cr's scratch area in the task. */
const SUBMIT_BATCH = 1024;

/** What the header of a saved ring says, and whether it is one the kernel made (magic, header length, events filling it). */
export function aioRingHeader(ring: Buffer): { nr: number; head: number; tail: number; sane: boolean } {
  const nr = ring.readUInt32LE(4);
  const head = ring.readUInt32LE(8);
  const tail = ring.readUInt32LE(12);
  const sane =
    ring.length > AIO_RING_HEADER &&
    ring.readUInt32LE(16) === AIO_RING_MAGIC &&
    ring.readUInt32LE(28) === AIO_RING_HEADER &&
    nr === (ring.length - AIO_RING_HEADER) / IO_EVENT_SIZE &&
    head < nr &&
    tail < nr;
  return { nr, head, tail, sane };
}

/**
 * Makes an AIO context (io_setup(2)) again in the stopped task cr made, with the ring it had at
 * `address`, whose saved bytes are `ring`: the program's aio_context_t is that address, and the
 * kernel follows a ring moved there with mremap. io_setup is asked for as many requests as give a
 * ring of the same size (the kernel doubles the request and adds 2, then fills whole pages). The
 * kernel keeps the ring's tail itself: it is moved to the saved one by requests that complete at
 * once (a write of one byte to /dev/null, `devNull` being cr's descriptor of it), the head set as
 * they go so that the ring never fills; then the saved events are copied in. As CRIU does.
 */
export function rebuildAioRing(task: RemoteTask, address: bigint, ring: Buffer, devNull: number): void {
  const saved = aioRingHeader(ring);
  const where = `the AIO ring at 0x${address.toString(16)} of PID ${task.pid}`;
  if (!saved.sane) throw new TargetError(`cannot restore ${where}: the image does not hold a ring the kernel made`);
  const out = task.put(Buffer.alloc(8));
  task.syscall({ name: 'io_setup', nr: SYS.io_setup }, [Math.floor((saved.nr - 2) / 2), out]);
  const ctx = task.read(out, 8).readBigUInt64LE();
  const madeNr = task.read(ctx, 8).readUInt32LE(4);
  if (madeNr !== saved.nr) throw new TargetError(`cannot restore ${where}: the kernel made a ring of ${madeNr} events, not ${saved.nr}`);
  const count = saved.tail < saved.head ? saved.nr + saved.tail : saved.tail;
  if (count > 0) moveTail(task, ctx, count, saved.head, devNull);
  task.write(ctx + BigInt(AIO_RING_HEADER), ring.subarray(AIO_RING_HEADER));
  task.mremapTo(ctx, BigInt(ring.length), address);
}

/** Submits `count` writes that complete at once, setting the ring's head as they go, until it is `head`. */
function moveTail(task: RemoteTask, ctx: bigint, count: number, head: number, devNull: number): void {
  const [fd] = task.pullFdsCloseOnExec([devNull]) as [number];
  try {
    const byte = task.put(Buffer.alloc(8));
    const iocb = task.put(
      encodeStruct(iocbStruct, {
        aio_data: 0,
        aio_key: 0,
        aio_rw_flags: 0,
        aio_lio_opcode: IOCB_CMD_PWRITE,
        aio_reqprio: 0,
        aio_fildes: fd,
        aio_buf: byte,
        aio_nbytes: 1,
        aio_offset: 0,
        aio_reserved2: 0,
        aio_flags: 0,
        aio_resfd: 0,
      }),
    );
    const batch = Math.min(count, SUBMIT_BATCH);
    const pointers = Buffer.alloc(8 * batch);
    for (let i = 0; i < batch; i++) pointers.writeBigUInt64LE(iocb, i * 8);
    const list = task.put(pointers);
    for (let submitted = 0; submitted < count; ) {
      submitted += Number(task.syscall({ name: 'io_submit', nr: SYS.io_submit }, [ctx, Math.min(count - submitted, batch), list]));
      const at = Buffer.alloc(4);
      at.writeUInt32LE(Math.min(submitted, head));
      task.write(ctx + 8n, at);
    }
  } finally {
    task.close(fd);
  }
}
