import { O_RDONLY } from 'node:constants';
import { closeSync, existsSync, fchmodSync, fchownSync, fstatSync, ftruncateSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import {
  TargetError,
  Kernel,
  PLUGIN_API_VERSION,
  blobProblems,
  inject,
  injectable,
  objectType,
  readRegions,
  writeRegions,
  type CollectedObject,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
} from '@cr/core';
import { TASKS } from '@cr/plugin-tasks';
import { shmemSources, type ShmemSource } from './collect.js';
import { shmemRecordSchema, type ShmemRecord } from './record.js';

/** A shared memory object as restored: a read-write descriptor of cr's on it, until the restore is over. */
export class RestoredShmem {
  private open = true;
  constructor(readonly fd: number) {}

  /** Opening this path opens the object again (for a mapping, or a descriptor of the program's). */
  get path(): string {
    return `/proc/self/fd/${this.fd}`;
  }

  /** Closes cr's descriptor, once: the number may be another file's afterwards. */
  close(): void {
    if (this.open) closeSync(this.fd);
    this.open = false;
  }
}

/** The objects of type `shmem`, by inode: what the mm and memfd plugins map and open. */
export const SHMEM = objectType<ShmemSource, RestoredShmem>('shmem');

/** Why a record that maps or opens shmem object `inode` cannot be restored when the image lacks it. */
export function missingShmem(inode: number): string {
  return `${SHMEM.key(inode)}, which the image does not hold (shared memory comes back only from the image: checkpoint again without leaving it out)`;
}

/**
 * Shared memory objects: memfds (memfd_create) and the shmem files behind shared anonymous
 * mappings, one object per inode however many descriptors and mappings lead to it. Saved with
 * their name, size, owner, mode, seals and every page they hold (SEEK_DATA, whether or not the
 * process has touched it); restored as a new memfd of the same name, or new shared anonymous
 * memory, which the mm and memfd plugins then map and open.
 */
@injectable()
export class ShmemPlugin implements ResourcePlugin<ShmemRecord, ShmemSource, RestoredShmem> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = SHMEM.type;
  readonly version = 1;
  readonly description = 'Shared memory objects (memfds, shared anonymous memory): name, size, seals, every page';
  readonly collectsFrom = [TASKS.type];
  readonly recordSchema = shmemRecordSchema;
  readonly selectableBy = { inode: 'uint', kind: { oneOf: ['memfd', 'anonymous', 'deleted'] }, name: 'string' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<ShmemSource>[] {
    const task = TASKS.handleOf(parent);
    return shmemSources(task.pid, task.fds(), this.kernel.mappings(task.pid)).map((source) => ({
      id: String(source.inode),
      handle: source,
      attributes: { inode: source.inode, kind: source.what.kind, name: nameOf(source.what) },
    }));
  }

  async save(node: ResourceNode<ShmemSource>, ctx: SaveContext): Promise<ShmemRecord> {
    const { path, what, inode } = node.handle;
    const fd = openSync(path, O_RDONLY);
    try {
      const st = fstatSync(fd);
      const regions = this.kernel.shmem.dataRegions(fd, st.size, path);
      const length = regions.reduce((sum, r) => sum + r.length, 0);
      if (length > 0) await ctx.writeBlob('contents', readRegions(fd, regions, `the contents of ${node.key} (${path})`));
      return {
        kind: what.kind,
        ...(what.kind === 'memfd' ? { name: what.name } : {}),
        ...(what.kind === 'deleted' ? { path: what.path } : {}),
        inode,
        size: st.size,
        mode: st.mode & 0o7777,
        uid: st.uid,
        gid: st.gid,
        seals: what.kind === 'memfd' ? this.kernel.shmem.seals(fd, path) : 0,
        regions: regions.map((r) => ({ offset: r.position, length: r.length })),
      };
    } finally {
      closeSync(fd);
    }
  }

  /** A memfd has a name; the regions lie in order within its size; the blob holds them. */
  checkRecord(record: ShmemRecord, ctx: RecordCheckContext): string[] {
    const problems: string[] = [];
    if ((record.kind === 'memfd') !== (record.name !== undefined)) problems.push('a memfd must have a name, and only a memfd');
    if ((record.kind === 'deleted') !== (record.path !== undefined)) problems.push('a deleted file must have a path, and only a deleted file');
    let end = 0;
    for (const r of record.regions) {
      if (r.offset < end || r.offset + r.length > record.size) problems.push(`its region at ${r.offset} overlaps another or lies beyond its ${record.size} bytes`);
      end = r.offset + r.length;
    }
    const length = record.regions.reduce((sum, r) => sum + r.length, 0);
    return [...problems, ...blobProblems(ctx, length > 0 ? { contents: length } : {})];
  }

  /** A deleted file is made again where it was, for a moment: the path must be free and its directory there. */
  preflight(record: ShmemRecord, ctx: RestoreContext): void {
    if (record.kind !== 'deleted') return;
    const path = record.path!;
    if (existsSync(path)) throw new TargetError(`cannot restore ${ctx.key} (${describeShmem(record)}): ${path} exists now; remove it, or restore where it is free`);
    if (!existsSync(dirname(path))) throw new TargetError(`cannot restore ${ctx.key} (${describeShmem(record)}): its directory ${dirname(path)} is gone; recreate it`);
  }

  async restore(record: ShmemRecord, ctx: RestoreContext): Promise<RestoredShmem> {
    const who = `${ctx.key} (${describeShmem(record)})`;
    const fd =
      record.kind === 'memfd'
        ? this.kernel.shmem.createMemfd(record.name!, who)
        : record.kind === 'deleted'
          ? this.kernel.shmem.createDeleted(record.path!, who)
          : this.kernel.shmem.createSharedAnonymous(record.size, who);
    try {
      ftruncateSync(fd, record.size);
      fchownSync(fd, record.uid, record.gid);
      fchmodSync(fd, record.mode);
      const regions = record.regions.map((r) => ({ position: r.offset, length: r.length }));
      if (regions.length > 0) await writeRegions(fd, regions, ctx.readBlob('contents'), `the contents of ${who}`);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    return new RestoredShmem(fd);
  }

  /** Seals last, once every mapping exists: F_SEAL_WRITE and F_SEAL_FUTURE_WRITE would refuse the writable ones. */
  resume(record: ShmemRecord, restored: RestoredShmem, ctx: RestoreContext): void {
    try {
      if (record.seals !== 0) this.kernel.shmem.addSeals(restored.fd, record.seals, ctx.key);
    } finally {
      restored.close();
    }
  }

  rollback(_record: ShmemRecord, restored: RestoredShmem): void {
    restored.close();
  }
}

/** What a shmem object is called in messages and selected by (`name`): a memfd's name, a deleted file's path. */
function nameOf(what: ShmemSource['what']): string {
  return what.kind === 'memfd' ? what.name : what.kind === 'deleted' ? what.path : '';
}

function describeShmem(record: ShmemRecord): string {
  return record.kind === 'memfd' ? `memfd ${record.name}` : record.kind === 'deleted' ? `the deleted file ${record.path}` : 'shared anonymous memory';
}
