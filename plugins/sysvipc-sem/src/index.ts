import {
  Kernel,
  inject,
  injectable,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type Attributes,
  type SemInfo,
} from '@cr/core';
import { IPC_OBJECT_SELECTABLE, SysvIpcObjectPlugin, createWithSavedId, recreateIpcObject, type IpcObjectHandle, type StandIn } from '@cr/sysvipc-base';
import { semRecordSchema, type SemRecord } from './record.js';

/** SysV semaphore sets: every semaphore's value. */
@injectable()
export class SysvSemPlugin extends SysvIpcObjectPlugin<SemRecord, 'sem'> implements ResourcePlugin<SemRecord, IpcObjectHandle<SemInfo>, number> {
  readonly type = 'sysvipc-sem';
  readonly description = 'SysV semaphore sets: every value, key, id, owners, mode';
  readonly recordSchema = semRecordSchema;
  override readonly selectableBy = { ...IPC_OBJECT_SELECTABLE, nsems: 'uint' } as const;
  /** The program holds the set id itself, and indexes its semaphores: same id, same count. */
  protected readonly standIn: StandIn = { shape: ['nsems'], otherId: false };

  constructor(@inject(Kernel) kernel: Kernel) {
    super(kernel, 'sem');
  }

  protected blobsOf(_record: SemRecord): Record<string, number> {
    return {};
  }

  protected override attributesOf(info: SemInfo): Attributes {
    return { ...super.attributesOf(info), nsems: info.nsems };
  }

  save(node: ResourceNode<IpcObjectHandle<SemInfo>>): SemRecord {
    const { ns, info } = node.handle;
    const values = this.kernel.namespaces.within(ns, () => this.kernel.sysvipc.semGetAll(info.id, info.nsems));
    return { ...this.identityOf(info), values };
  }

  restore(record: SemRecord, ctx: RestoreContext): Promise<number> {
    const ipc = this.kernel.sysvipc;
    return recreateIpcObject(this.kernel, ctx, 'sem', record.id, (ns) =>
      this.kernel.namespaces.within(ns, () => {
        createWithSavedId(this.kernel, 'sem', record.id, () => ipc.asCreator(record, () => ipc.semCreate(record.key, record.values.length, 0o600)));
        ipc.semSetAll(record.id, record.values);
        ipc.setOwnership('sem', record.id, record);
      }),
    );
  }
}

export { semRecordSchema, type SemRecord } from './record.js';

export default SysvSemPlugin;
