import {
  Kernel,
  PLUGIN_API_VERSION,
  TargetError,
  blobProblems,
  holderProblems,
  inject,
  injectable,
  installDescription,
  type CollectedObject,
  type RecordCheckContext,
  type RemoteTask,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
} from '@cr/core';
import { TASKS, restoredTaskOf } from '@cr/plugin-tasks';
import { O_RDONLY, O_WRONLY } from 'node:constants';
import { closeSync } from 'node:fs';
import { heldPipes, type HeldPipe } from './collect.js';
import { inheritedPath, openInherited } from '@cr/descriptor-base';
import { pipeRecordSchema, type PipeRecord } from './record.js';
import { FifosPlugin } from './fifos.js';
import { readAll } from './read-all.js';

export { pipeRecordSchema, fifoRecordSchema, type PipeRecord, type FifoRecord } from './record.js';
export { FifosPlugin } from './fifos.js';

/** A pipe being checkpointed: the processes that hold it, and their descriptors on it. */
export interface PipeHandle {
  pipe: HeldPipe;
}

/**
 * Pipes of a process. One whose both ends it holds (a self-pipe that wakes an event loop) is
 * saved with the bytes queued in it, read without taking them out, and restored as a new pipe of
 * the same capacity holding the same bytes. One whose other end is outside the checkpoint (fd 5
 * of `cmd 5>&1 | cat`) is saved as that end only, given again at restore with --inherit-fd; its
 * bytes stay in the pipe, with whoever holds it. Each claims its descriptors (`fd:PID:N`), which
 * the files plugin then leaves to it; stdio that leads outside is the files plugin's (inherited).
 */
@injectable()
export class PipesPlugin implements ResourcePlugin<PipeRecord, PipeHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'pipes';
  readonly version = 1;
  readonly description = 'Pipes: both ends held by the checkpointed processes (a self-pipe, a pipeline) with the bytes queued in them, or an end leading outside, given with --inherit-fd';
  readonly collectsFrom = [TASKS.type];
  readonly recordSchema = pipeRecordSchema;
  readonly selectableBy = { pid: 'uint', inode: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<PipeHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    // Each process holding an end of a pipe wholly inside reports it under the id of the first: one object, which claims every end.
    let checkpointed: Set<number> | undefined;
    const heldElsewhere = (inode: number) => this.kernel.procfs.heldElsewhere(`pipe:[${inode}]`, (checkpointed ??= new Set([...task.tree.tasks.map((t) => t.pid), process.pid])));
    return heldPipes(pid, task.tree.tasks, (a, b) => this.kernel.sameOpenFile(pid, a, pid, b), heldElsewhere).map((pipe) => ({
      id: `${pipe.pid}:${pipe.inode}`,
      handle: { pipe },
      attributes: { pid: pipe.pid, inode: pipe.inode },
      claims: [pipe, ...pipe.holders].filter((h) => h.pid === pid).flatMap((h) => h.ends.map((e) => `fd:${pid}:${e.fd}`)),
    }));
  }

  async save(node: ResourceNode<PipeHandle>, ctx: SaveContext): Promise<PipeRecord> {
    const { pipe } = node.handle;
    const { data, capacity } = this.kernel.pipes.peek(pipe.pid, pipe.ends[0]!.fd);
    if (pipe.outside) {
      const fds = pipe.ends.map((e) => e.fd);
      ctx.warn(`PID ${pipe.pid}: fd ${fds.join(', ')} is the ${pipe.ends[0]!.end} end of pipe:[${pipe.inode}], whose ${pipe.outside} end is outside the checkpoint; restore will need --inherit-fd ${fds[0]}=PATH`);
      return { inode: pipe.inode, capacity, queued: 0, ends: pipe.ends, outside: pipe.outside };
    }
    if (data.length > 0) await ctx.writeBlob('data', data);
    return {
      inode: pipe.inode,
      capacity,
      queued: data.length,
      ends: pipe.ends,
      ...(pipe.holders.length > 0 ? { holders: pipe.holders } : {}),
      ...(pipe.closed ? { closed: pipe.closed } : {}),
    };
  }

  /** The ends are of PID's own (`PID:INODE` below `tasks:PID`), both kinds are there or one with the other outside, and the blob holds what was queued. */
  checkRecord(record: PipeRecord, ctx: RecordCheckContext): string[] {
    const problems: string[] = [];
    const [pid] = ctx.id.split(':');
    if (!ctx.parents.includes(`tasks:${pid}`)) problems.push(`it is a pipe of PID ${pid} but does not hang below tasks:${pid}`);
    const all = [...record.ends, ...(record.holders ?? []).flatMap((h) => h.ends)];
    const kinds = new Set(all.map((e) => e.end));
    if (record.outside === undefined && record.closed === undefined && kinds.size < 2) problems.push('it lacks a read end or a write end');
    if (record.closed !== undefined && (kinds.has(record.closed) || record.outside !== undefined)) problems.push(`its ${record.closed} end is closed, yet it holds that end or has one outside`);
    if (record.outside !== undefined && (kinds.has(record.outside) || record.queued > 0 || (record.holders ?? []).length > 0)) {
      problems.push(`its ${record.outside} end is outside, yet it holds that end, other holders or queued bytes`);
    }
    if (new Set(record.ends.map((e) => e.fd)).size !== record.ends.length) problems.push('it names one fd twice');
    problems.push(...holderProblems((record.holders ?? []).map((h) => ({ pid: h.pid, fds: h.ends })), pid!, ctx.parents));
    if (record.queued > record.capacity) problems.push(`${record.queued} bytes are queued in a pipe of ${record.capacity}`);
    return [...problems, ...blobProblems(ctx, record.queued > 0 ? { data: record.queued } : {})];
  }

  inheritableFds(record: PipeRecord): number[] {
    return record.outside === undefined ? [] : record.ends.map((e) => e.fd);
  }

  /** An end whose other end was outside needs --inherit-fd, checked before anything is changed. */
  preflight(record: PipeRecord, ctx: RestoreContext): void {
    if (record.outside === undefined || inheritedPath(record.ends, ctx)) return;
    const [pid] = ctx.key.slice(this.type.length + 1).split(':');
    const fds = record.ends.map((e) => e.fd);
    const end = record.ends[0]!.end;
    throw new TargetError(
      `cannot restore fd ${fds.join(', ')} of PID ${pid}: the ${end} end of pipe:[${record.inode}], whose ${record.outside} end was outside the checkpoint; ` +
        `give it with --inherit-fd ${fds[0]}=PATH (the pipe as /proc/PID/fd/N of the process holding the other end, a named pipe, or a file)`,
    );
  }

  /** Into the process, and into every other holder that was restored (a process left out has none to give it to). */
  async restore(record: PipeRecord, ctx: RestoreContext): Promise<void> {
    const task = restoredTaskOf(ctx);
    if (record.outside !== undefined) return this.restoreGivenEnd(task, record, ctx);
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

  private restoreGivenEnd(task: RemoteTask, record: PipeRecord, ctx: RestoreContext): void {
    const { fd, path } = inheritedPath(record.ends, ctx)!;
    const { end, flags } = record.ends[0]!;
    const { local, statusFlags } = openInherited(fd, path, (end === 'read' ? O_RDONLY : O_WRONLY) | flags);
    try {
      installDescription(task, local, record.ends, statusFlags);
    } finally {
      closeSync(local);
    }
  }
}

export default [PipesPlugin, FifosPlugin];
