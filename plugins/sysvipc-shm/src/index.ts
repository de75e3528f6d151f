import {
  Kernel,
  SHM_DEST,
  SHM_LOCKED,
  TargetError,
  inject,
  injectable,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
  type Attributes,
  type ShmInfo,
  type ByteRange,
} from '@cr/core';
import { IPC_OBJECT_SELECTABLE, SHM_SEGMENTS, SysvIpcObjectPlugin, createWithSavedId, recreateIpcObject, withinIntoNamespace, type IpcObjectHandle, type StandIn } from '@cr/sysvipc-base';
import { shmRecordSchema, type ShmRecord } from './record.js';
import { nonZeroPages, scatter } from './sparse.js';

/**
 * SysV shared memory segments. Contents go to the image straight from the attached segment
 * (a zero-copy view), and come back straight into the new segment. Only the pages a segment
 * holds that are not all zeros are saved, and restored: a large segment that was barely used
 * stays small on both sides, and checkpointing it does not make it take memory it did not.
 */
@injectable()
export class SysvShmPlugin extends SysvIpcObjectPlugin<ShmRecord, 'shm'> implements ResourcePlugin<ShmRecord, IpcObjectHandle<ShmInfo>, number> {
  readonly type = SHM_SEGMENTS.type;
  readonly description = 'SysV shared memory segments: contents, key, id, owners, mode, SHM_LOCKED, SHM_DEST';
  readonly recordSchema = shmRecordSchema;
  override readonly selectableBy = { ...IPC_OBJECT_SELECTABLE, size: 'uint' } as const;
  /** A process's attachment is remade by cr at the id it finds, so another id will do; never another size. */
  protected readonly standIn: StandIn = { shape: ['size'], otherId: true };

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel, 'shm');
  }

  protected blobsOf(record: ShmRecord): Record<string, number> {
    return { contents: savedRanges(record).reduce((sum, r) => sum + r.length, 0) };
  }

  protected override attributesOf(info: ShmInfo): Attributes {
    return { ...super.attributesOf(info), size: info.size };
  }

  async save(node: ResourceNode<IpcObjectHandle<ShmInfo>>, ctx: SaveContext): Promise<ShmRecord> {
    const { ns, info } = node.handle;
    const mapping = this.kernel.namespaces.within(ns, () => this.kernel.sysvipc.shmAttach(info.id, info.size, true));
    const ranges: ByteRange[] = [];
    try {
      const data = mapping.dataRanges();
      for (const range of data) mapping.populate(range);
      await ctx.writeBlob('contents', toAsync(nonZeroPages(mapping.view(), data, ranges)));
    } finally {
      mapping.detach();
    }
    return {
      ...this.identityOf(info),
      size: info.size,
      locked: (info.mode & SHM_LOCKED) !== 0,
      markedForDestruction: (info.mode & SHM_DEST) !== 0,
      ranges,
    };
  }

  /**
   * Besides a free id and key: the segment must fit the target namespace's kernel.shmmax. Only an
   * existing namespace (`--into-ipc-ns`) can be checked; a new one gets the saved limits first.
   */
  override preflight(record: ShmRecord, ctx: RestoreContext): void {
    super.preflight(record, ctx);
    const found = withinIntoNamespace(this.kernel, ctx, () => this.kernel.sysctl.read('kernel.shmmax'));
    if (!found) return;
    const shmmax = BigInt(found.value.trim());
    if (BigInt(record.size) > shmmax) {
      throw new TargetError(
        `cannot restore ${ctx.key} (shm id ${record.id}, ${record.size} bytes) into ${found.into}: that is above the namespace's ` +
          `kernel.shmmax ${shmmax}; raise it first: nsenter --ipc=${found.into} sysctl kernel.shmmax=${record.size}`,
      );
    }
  }

  restore(record: ShmRecord, ctx: RestoreContext): Promise<number> {
    const ipc = this.kernel.sysvipc;
    return recreateIpcObject(this.kernel, ctx, 'shm', record.id, async (ns) => {
      const mapping = this.kernel.namespaces.within(ns, () => {
        createWithSavedId(this.kernel, 'shm', record.id, () => ipc.asCreator(record, () => ipc.shmCreate(record.key, record.size, 0o600)));
        return ipc.shmAttach(record.id, record.size, false);
      });
      try {
        const ranges = savedRanges(record);
        for (const range of ranges) mapping.populate(range);
        await scatter(ctx.readBlob('contents'), mapping.view(), ranges, `${ctx.key} contents`);
      } finally {
        mapping.detach();
      }
      this.kernel.namespaces.within(ns, () => {
        ipc.setOwnership('shm', record.id, record);
        if (record.locked) ipc.shmLock(record.id);
      });
    });
  }

  /**
   * A segment removed while attached (SHM_DEST) is removed again once every restored process has
   * attached it: it then lives as long as they keep it, as it did. Restored without any process
   * that attaches it (an IPC namespace on its own), it is left in place: removed, it would vanish.
   */
  resume(record: ShmRecord, id: number, ctx: RestoreContext): void {
    if (!record.markedForDestruction) return;
    this.withinRestoreNamespace(ctx, () => {
      const attached = this.kernel.sysvipc.list('shm').find((s) => s.id === id)?.nattch ?? 0;
      if (attached > 0) this.kernel.sysvipc.remove('shm', id);
    });
  }

}

/** The ranges a record's blob holds: the whole segment in images made before sparse saving. */
function savedRanges(record: ShmRecord): ByteRange[] {
  return record.ranges ?? [{ offset: 0, length: record.size }];
}

async function* toAsync<T>(items: Iterable<T>): AsyncGenerator<T> {
  yield* items;
}

export { shmRecordSchema, type ShmRecord } from './record.js';

export default SysvShmPlugin;
