import {
  Kernel,
  NamespaceHandle,
  ownNamespaceDefault,
  PLUGIN_API_VERSION,
  blobProblems,
  inject,
  injectable,
  type CollectedObject,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
} from '@cr/core';
import { TASKS } from '@cr/plugin-tasks';
import { utsNsRecordSchema, type UtsNsRecord } from './record.js';

/** UTS namespace of a process: its hostname and NIS domain name. */
@injectable()
export class UtsNsPlugin implements ResourcePlugin<UtsNsRecord, NamespaceHandle, NamespaceHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'uts-ns';
  readonly version = 1;
  readonly description = 'UTS namespace: hostname and domainname';
  /** Below each process, so that a process is frozen before its namespaces are read. */
  readonly collectsFrom = [TASKS.type];
  readonly namespaceKind = 'uts' as const;
  readonly recordSchema = utsNsRecordSchema;
  readonly selectableBy = { inode: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<NamespaceHandle>[] {
    const { pid, zombie } = TASKS.handleOf(parent);
    if (zombie) return [];
    const ns = this.kernel.namespaces.ofProcess(pid, 'uts');
    return [{ id: String(ns.inode), handle: ns, attributes: { inode: ns.inode }, release: () => ns.close(), ...ownNamespaceDefault(this.kernel, ns) }];
  }

  save(node: ResourceNode<NamespaceHandle>): UtsNsRecord {
    return this.kernel.namespaces.within(node.handle, () => this.kernel.utsNames());
  }

  /** The kernel holds each name in 64 bytes, which the schema's 64 characters may exceed. */
  checkRecord(record: UtsNsRecord, ctx: RecordCheckContext): string[] {
    const long = (['hostname', 'domainname'] as const).filter((name) => Buffer.byteLength(record[name]) > 64);
    return [...long.map((name) => `its ${name} is longer than the kernel's 64 bytes`), ...blobProblems(ctx, {})];
  }

  restore(record: UtsNsRecord): NamespaceHandle {
    const ns = this.kernel.namespaces.create('uts');
    try {
      this.kernel.namespaces.within(ns, () => this.kernel.setUtsNames(record));
      return ns;
    } catch (err) {
      ns.close();
      throw err;
    }
  }
}

export { utsNsRecordSchema, type UtsNsRecord } from './record.js';

export default UtsNsPlugin;

