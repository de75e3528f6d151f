import {
  Kernel,
  PLUGIN_API_VERSION,
  blobProblems,
  holderProblems,
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

/** A pipe being checkpointed: the processes that hold it, and their descriptors on it. */
export interface PipeHandle {
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
  readonly description = 'Pipes both of whose ends the checkpointed processes hold (a self-pipe, a pipeline), with the bytes queued in them';
  readonly collectsFrom = [TASKS.type];
  readonly recordSchema = pipeRecordSchema;
  readonly selectableBy = { pid: 'uint', inode: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<PipeHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    // Each process holding an end reports the pipe under the id of the first: one object, which claims every end.
    return heldPipes(pid, task.tree.tasks).map((pipe) => ({
      id: `${pipe.pid}:${pipe.inode}`,
      handle: { pipe },
      attributes: { pid: pipe.pid, inode: pipe.inode },
      claims: [pipe, ...pipe.holders].filter((h) => h.pid === pid).flatMap((h) => h.ends.map((e) => `fd:${pid}:${e.fd}`)),
    }));
  }

  async save(node: ResourceNode<PipeHandle>, ctx: SaveContext): Promise<PipeRecord> {
    const { pipe } = node.handle;
    const { data, capacity } = this.kernel.pipes.peek(pipe.pid, pipe.ends[0]!.fd);
    if (data.length > 0) await ctx.writeBlob('data', data);
    return { inode: pipe.inode, capacity, queued: data.length, ends: pipe.ends, ...(pipe.holders.length > 0 ? { holders: pipe.holders } : {}) };
  }

  /** The ends are of PID's own (`PID:INODE` below `tasks:PID`), both kinds are there, and the blob holds what was queued. */
  checkRecord(record: PipeRecord, ctx: RecordCheckContext): string[] {
    const problems: string[] = [];
    const [pid] = ctx.id.split(':');
    if (!ctx.parents.includes(`tasks:${pid}`)) problems.push(`it is a pipe of PID ${pid} but does not hang below tasks:${pid}`);
    const all = [...record.ends, ...(record.holders ?? []).flatMap((h) => h.ends)];
    if (!all.some((e) => e.end === 'read') || !all.some((e) => e.end === 'write')) problems.push('it lacks a read end or a write end');
    if (new Set(record.ends.map((e) => e.fd)).size !== record.ends.length) problems.push('it names one fd twice');
    problems.push(...holderProblems((record.holders ?? []).map((h) => ({ pid: h.pid, fds: h.ends })), pid!, ctx.parents));
    if (record.queued > record.capacity) problems.push(`${record.queued} bytes are queued in a pipe of ${record.capacity}`);
    return [...problems, ...blobProblems(ctx, record.queued > 0 ? { data: record.queued } : {})];
  }

  /** Into the process, and into every other holder that was restored (a process left out has none to give it to). */
  async restore(record: PipeRecord, ctx: RestoreContext): Promise<void> {
    const task = restoredTaskOf(ctx);
    const data = record.queued > 0 ? await readAll(ctx.readBlob('data')) : Buffer.alloc(0);
    const [read, write] = this.kernel.pipes.create({ data, capacity: record.capacity }, `a pipe of PID ${task.pid}`);
    const holders = [
      { task, ends: record.ends },
      ...(record.holders ?? []).flatMap(({ pid, ends }) => {
        const holder = TASKS.restored(ctx, pid)?.task;
        return holder ? [{ task: holder, ends }] : [];
      }),
    ];
    try {
      // Each end is one open file description, shared by its dups and by the processes holding it, as after pipe2 and fork.
      for (const [end, local] of [['read', read], ['write', write]] as const) {
        for (const holder of holders) {
          const fds = holder.ends.filter((e) => e.end === end);
          if (fds.length > 0) installDescription(holder.task, local, fds, fds[0]!.flags);
        }
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
