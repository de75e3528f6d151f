import {
  Kernel,
  NamespaceHandle,
  PLUGIN_API_VERSION,
  TARGET_PROCESS,
  inject,
  injectable,
  type CollectedObject,
  type ProcessTargetHandle,
  type ResourceNode,
  type ResourcePlugin,
} from '@cr/core';
import { utsNsRecordSchema, type UtsNsRecord } from '@cr/schemas';

/** UTS namespace of the target process: its hostname and NIS domain name. */
@injectable()
export class UtsNsPlugin implements ResourcePlugin<UtsNsRecord, NamespaceHandle, NamespaceHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'uts-ns';
  readonly version = 1;
  readonly description = 'UTS namespace: hostname and domainname';
  readonly collectsFrom = [TARGET_PROCESS];
  readonly namespaceKind = 'uts' as const;
  readonly recordSchema = utsNsRecordSchema;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<NamespaceHandle>[] {
    const { pid } = parent.handle as ProcessTargetHandle;
    const ns = this.kernel.namespaces.ofProcess(pid, 'uts');
    return [{ id: String(ns.inode), handle: ns, attributes: { inode: ns.inode }, release: () => ns.close() }];
  }

  save(node: ResourceNode<NamespaceHandle>): UtsNsRecord {
    return this.kernel.namespaces.within(node.handle, () => this.kernel.utsNames());
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

export default UtsNsPlugin;
