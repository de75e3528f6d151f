import {
  Kernel,
  PLUGIN_API_VERSION,
  blobProblems,
  inject,
  injectable,
  installDescription,
  type CollectedObject,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
} from '@cr/core';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { closeSync } from 'node:fs';
import { heldPipes, type HeldPipe } from './collect.js';
import { pipeRecordSchema, type PipeRecord } from './record.js';

export { pipeRecordSchema, type PipeRecord } from './record.js';

/** A pipe being checkpointed: the process that holds it, and its descriptors on it. */
export interface PipeHandle {
  pid: number;
  pipe: HeldPipe;
}

/**
 * Pipes whose both ends a process holds (a self-pipe that wakes an event loop, a pipe to itself),
 * with the bytes queued in them, read without taking them out. Each claims its descriptors
 * (`fd:PID:N`), which the files plugin then leaves to it. Restored as a new pipe of the same
 * capacity holding the same bytes, on the same descriptor numbers with the same flags.
 */
@injectable()
export class PipesPlugin implements ResourcePlugin<PipeRecord, PipeHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'pipes';
  readonly version = 1;
  readonly description = 'Pipes both of whose ends a process holds, with the bytes queued in them';
  readonly collectsFrom = [TASKS.type];
  readonly recordSchema = pipeRecordSchema;
  readonly selectableBy = { pid: 'uint', inode: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<PipeHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    return heldPipes(task.fds()).map((pipe) => ({
      id: `${pid}:${pipe.inode}`,
      handle: { pid, pipe },
      attributes: { pid, inode: pipe.inode },
      claims: pipe.ends.map((e) => `fd:${pid}:${e.fd}`),
    }));
  }

  async save(node: ResourceNode<PipeHandle>, ctx: SaveContext): Promise<PipeRecord> {
    const { pid, pipe } = node.handle;
    const { data, capacity } = this.kernel.pipes.peek(pid, pipe.ends[0]!.fd);
    if (data.length > 0) await ctx.writeBlob('data', data);
    return { inode: pipe.inode, capacity, queued: data.length, ends: pipe.ends };
  }

  /** The ends are of PID's own (`PID:INODE` below `tasks:PID`), both kinds are there, and the blob holds what was queued. */
  checkRecord(record: PipeRecord, ctx: RecordCheckContext): string[] {
    const problems: string[] = [];
    const [pid] = ctx.id.split(':');
    if (!ctx.parents.includes(`tasks:${pid}`)) problems.push(`it is a pipe of PID ${pid} but does not hang below tasks:${pid}`);
    if (!record.ends.some((e) => e.end === 'read') || !record.ends.some((e) => e.end === 'write')) problems.push('it lacks a read end or a write end');
    if (new Set(record.ends.map((e) => e.fd)).size !== record.ends.length) problems.push('it names one fd twice');
    if (record.queued > record.capacity) problems.push(`${record.queued} bytes are queued in a pipe of ${record.capacity}`);
    return [...problems, ...blobProblems(ctx, record.queued > 0 ? { data: record.queued } : {})];
  }

  async restore(record: PipeRecord, ctx: RestoreContext): Promise<void> {
    const task = restoredTaskOf(ctx);
    const data = record.queued > 0 ? await readAll(ctx.readBlob('data')) : Buffer.alloc(0);
    const [read, write] = this.kernel.pipes.create({ data, capacity: record.capacity }, `a pipe of PID ${task.pid}`);
    try {
      // Each end is one open file description, shared by its dups, as after pipe2.
      for (const [end, local] of [['read', read], ['write', write]] as const) {
        const fds = record.ends.filter((e) => e.end === end);
        installDescription(task, local, fds, fds[0]!.flags);
      }
    } finally {
      closeSync(read);
      closeSync(write);
    }
  }
}

async function readAll(source: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const part of source) parts.push(Buffer.from(part));
  return Buffer.concat(parts);
}

export default PipesPlugin;
