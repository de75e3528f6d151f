import {
  Kernel,
  NamespaceHandle,
  ownNamespaceDefault,
  PLUGIN_API_VERSION,
  IPC_NS_TARGET,
  blobProblems,
  inject,
  injectable,
  objectType,
  type CollectedObject,
  type ResourceNode,
  type RecordCheckContext,
  type ResourcePlugin,
  type RestoreContext,
} from '@cr/core';
import { TASKS } from '@cr/plugin-tasks';
import { IPC_NS_SYSCTLS, ipcNsRecordSchema, type IpcNsRecord } from './record.js';

/** The IPC namespaces, for the SysV object plugins below them: handles and restored values are NamespaceHandles. */
export const IPC_NAMESPACES = objectType<NamespaceHandle, NamespaceHandle>('ipc-ns');

/**
 * IPC namespace: the per-namespace `kernel.*` IPC limits. The SysV object plugins (shm, msg,
 * sem) collect below it, and restore their objects into the namespace this plugin restores.
 */
@injectable()
export class IpcNsPlugin implements ResourcePlugin<IpcNsRecord, NamespaceHandle, NamespaceHandle> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = IPC_NAMESPACES.type;
  readonly version = 1;
  readonly description = 'IPC namespace: per-namespace limits (msgmax, shmmax, sem …); parent of the SysV IPC objects';
  /** Below each process (frozen first), or the namespace given with `cr checkpoint --ipc-ns`. */
  readonly collectsFrom = [TASKS.type, IPC_NS_TARGET.type];
  readonly namespaceKind = 'ipc' as const;
  readonly recordSchema = ipcNsRecordSchema;
  readonly selectableBy = { inode: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  checkRecord(_record: IpcNsRecord, ctx: RecordCheckContext): string[] {
    return blobProblems(ctx, {});
  }

  collect(parent: ResourceNode): CollectedObject<NamespaceHandle>[] {
    const fromProcess = !IPC_NS_TARGET.is(parent);
    if (fromProcess && TASKS.handleOf(parent).zombie) return [];
    const ns = fromProcess
      ? this.kernel.namespaces.ofProcess(TASKS.handleOf(parent).pid, 'ipc')
      : this.kernel.namespaces.fromPath(IPC_NS_TARGET.handleOf(parent).path, 'ipc');
    return [{ id: String(ns.inode), handle: ns, attributes: { inode: ns.inode }, release: () => ns.close(), ...(fromProcess ? ownNamespaceDefault(this.kernel, ns) : {}) }];
  }

  save(node: ResourceNode<NamespaceHandle>): IpcNsRecord {
    return this.kernel.namespaces.within(node.handle, () => {
      const sysctls: IpcNsRecord['sysctls'] = {};
      for (const name of IPC_NS_SYSCTLS) {
        if (this.kernel.sysctl.exists(`kernel.${name}`)) sysctls[name] = this.kernel.sysctl.read(`kernel.${name}`).replace(/\s+/g, ' ');
      }
      return { sysctls };
    });
  }

  /**
   * Into a new namespace, with the saved limits; or, with `--into-ipc-ns`, into an existing one
   * whose limits are left as its owner set them.
   */
  restore(record: IpcNsRecord, ctx: RestoreContext): NamespaceHandle {
    const into = ctx.options.into?.ipc;
    if (into) return this.kernel.namespaces.fromPath(into, 'ipc');
    const ns = this.kernel.namespaces.create('ipc');
    try {
      this.kernel.namespaces.within(ns, () => {
        for (const [name, value] of Object.entries(record.sysctls)) this.kernel.sysctl.write(`kernel.${name}`, value);
      });
      return ns;
    } catch (err) {
      ns.close();
      throw err;
    }
  }
}

export { IPC_NS_SYSCTLS, ipcNsRecordSchema, type IpcNsRecord, type IpcNsSysctl } from './record.js';

export default IpcNsPlugin;
