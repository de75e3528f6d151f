import {
  NamespaceHandle,
  PLUGIN_API_VERSION,
  TargetError,
  blobProblems,
  hex,
  objectType,
  type AttributeType,
  type Attributes,
  type CollectedObject,
  type ExternalReference,
  type IpcInfoOf,
  type IpcKind,
  type IpcObjectInfo,
  type Kernel,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type ShmInfo,
  type RestoreContext,
} from '@cr/core';
import { IPC_NAMESPACES } from '@cr/plugin-ipc-ns';
import { findLiveIpcObject, type StandIn } from './external.js';

/**
 * The IPC namespace a SysV IPC object is restored into: the one its parent ipc-ns object was
 * restored as, or, when the image holds no ipc-ns record, the `--into-ipc-ns` namespace. The
 * second is opened here, so the caller must close it when `opened` is true.
 */
export function ipcNamespaceForRestore(kernel: Kernel, ctx: RestoreContext): { ns: NamespaceHandle; opened: boolean } {
  const ns = IPC_NAMESPACES.restoredParent(ctx);
  if (ns) return { ns, opened: false };
  const into = ctx.options.into?.ipc;
  if (into) return { ns: kernel.namespaces.fromPath(into, 'ipc'), opened: true };
  throw new TargetError(`${ctx.key} has no IPC namespace to go into: the image does not hold its ipc-ns; pass --into-ipc-ns PATH`);
}

/**
 * Fails, naming the object, when the id or (non-private) key of a saved object is taken in the
 * namespace it would be restored into. Only an existing namespace (`--into-ipc-ns`) can collide.
 */
export function assertIpcSlotFree(kernel: Kernel, ctx: RestoreContext, kind: IpcKind, saved: { id: number; key: number }): void {
  const found = withinIntoNamespace(kernel, ctx, () => kernel.sysvipc.list(kind));
  if (!found) return;
  const clash = found.value.find((o) => o.id === saved.id || (saved.key !== 0 && o.key >>> 0 === saved.key >>> 0));
  if (clash) {
    throw new TargetError(
      `cannot restore ${ctx.key} (${kind} id ${saved.id}, key ${hex(saved.key)}) into ${found.into}: ` +
        `${kind} id ${clash.id} with key ${hex(clash.key)} is already there; remove it (ipcrm) or restore into a new namespace`,
    );
  }
}

/**
 * Runs `read` inside the existing namespace given with `--into-ipc-ns`, for preflight checks;
 * undefined when the restore goes into a new namespace, which cannot hold anything yet.
 */
export function withinIntoNamespace<T>(kernel: Kernel, ctx: RestoreContext, read: () => T): { into: string; value: T } | undefined {
  const into = ctx.options.into?.ipc;
  if (!into) return undefined;
  const ns = kernel.namespaces.fromPath(into, 'ipc');
  try {
    return { into, value: kernel.namespaces.within(ns, read) };
  } finally {
    ns.close();
  }
}

/** The SysV shared-memory segments, for mm: a process's memory refers to the segments it attached. */
export const SHM_SEGMENTS = objectType<IpcObjectHandle<ShmInfo>, number>('sysvipc-shm');

/** Handle of a collected SysV IPC object: the namespace it lives in and what ipcs shows of it. */
export interface IpcObjectHandle<I extends IpcObjectInfo = IpcObjectInfo> {
  ns: NamespaceHandle;
  info: I;
}

/** What every SysV IPC object can be selected by; the key as ipcs shows it, 0x%08x. */
export const IPC_OBJECT_SELECTABLE = { id: 'uint', key: 'key' } as const satisfies Record<string, AttributeType>;

/**
 * What the SysV IPC object plugins (shm, msg, sem) share: they hang below ipc-ns, are found in
 * /proc/sysvipc of that namespace, selectable by id and key (and together as `sysvipc`), refuse
 * a taken id or key before anything changes, are found alive when an image refers to them
 * without saving them, and are removed again on rollback. Subclasses add save and restore.
 */
export abstract class SysvIpcObjectPlugin<R extends { id: number; key: number }, K extends IpcKind, I extends IpcInfoOf<K> = IpcInfoOf<K>>
  implements Omit<ResourcePlugin<R, IpcObjectHandle<I>, number>, 'description' | 'recordSchema' | 'save' | 'restore'>
{
  abstract readonly type: string;
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly version = 1;
  readonly collectsFrom = [IPC_NAMESPACES.type];
  readonly groups = ['sysvipc'];
  readonly selectableBy: Readonly<Record<string, AttributeType>> = IPC_OBJECT_SELECTABLE;
  /** What a live object must share with the saved one to stand in for it (findExternal). */
  protected abstract readonly standIn: StandIn;
  /** The blobs a record implies, by name, with their sizes in bytes. */
  protected abstract blobsOf(record: R): Record<string, number>;

  constructor(
    protected readonly kernel: Kernel,
    protected readonly kind: K,
  ) {}

  collect(parent: ResourceNode): CollectedObject<IpcObjectHandle<I>>[] {
    const ns = IPC_NAMESPACES.handleOf(parent);
    const objects = this.kernel.namespaces.within(ns, () => this.kernel.sysvipc.list(this.kind)) as I[];
    return objects.map((info) => ({ id: String(info.id), handle: { ns, info }, attributes: this.attributesOf(info) }));
  }

  /** What rules select objects by (`selectableBy`), and what identifies an external reference: id and key, and more where a subclass says. */
  protected attributesOf(info: I): Attributes {
    return { id: info.id, key: hex(info.key) };
  }

  findExternal(ref: ExternalReference, ctx: RestoreContext): number {
    return findLiveIpcObject(this.kernel, this.kind, ref, ctx, this.standIn, (info) => this.attributesOf(info as I));
  }

  /** The part of a record every SysV object has: key, id, permission bits and owners. */
  protected identityOf(info: I): { key: number; id: number; mode: number; uid: number; gid: number; cuid: number; cgid: number } {
    return { key: info.key, id: info.id, mode: info.mode & 0o777, uid: info.uid, gid: info.gid, cuid: info.cuid, cgid: info.cgid };
  }

  /**
   * The record holds its object's id; no other object of the type in the same IPC namespace has
   * its key (unless IPC_PRIVATE), which the kernel would refuse half-way through a restore; and
   * its blobs are the ones `blobsOf` says, with those sizes.
   */
  checkRecord(record: R, ctx: RecordCheckContext): string[] {
    const problems: string[] = [];
    if (String(record.id) !== ctx.id) problems.push(`it holds ${this.kind} id ${record.id}, not ${ctx.id}`);
    const key = record.key >>> 0;
    const twin = ctx
      .records<R>(this.type)
      .find((o) => o.key !== ctx.key && key !== 0 && o.record.key >>> 0 === key && o.parents.some((p) => ctx.parents.includes(p)));
    if (twin) problems.push(`${twin.key} has the same key ${hex(key)} in the same IPC namespace`);
    return [...problems, ...blobProblems(ctx, this.blobsOf(record))];
  }

  preflight(record: R, ctx: RestoreContext): void {
    assertIpcSlotFree(this.kernel, ctx, this.kind, record);
  }

  rollback(_record: R, id: number, ctx: RestoreContext): void {
    this.withinRestoreNamespace(ctx, () => this.kernel.sysvipc.remove(this.kind, id));
  }

  /** Runs `work` inside the IPC namespace this object was restored into. */
  protected withinRestoreNamespace<T>(ctx: RestoreContext, work: () => T): T {
    const { ns, opened } = ipcNamespaceForRestore(this.kernel, ctx);
    try {
      return this.kernel.namespaces.within(ns, work);
    } finally {
      if (opened) ns.close();
    }
  }
}

/**
 * The frame of every SysV object restore: finds the namespace (ipcNamespaceForRestore), lets
 * `build` create and fill the object there, and if `build` fails removes what it left behind.
 * Preflight made sure `id` was free, so an object with that id after a failure is ours.
 */
export async function recreateIpcObject(kernel: Kernel, ctx: RestoreContext, kind: IpcKind, id: number, build: (ns: NamespaceHandle) => Promise<void> | void): Promise<number> {
  const { ns, opened } = ipcNamespaceForRestore(kernel, ctx);
  try {
    await build(ns);
    return id;
  } catch (err) {
    kernel.namespaces.within(ns, () => {
      if (kernel.sysvipc.list(kind).some((o) => o.id === id)) kernel.sysvipc.remove(kind, id);
    });
    throw err;
  } finally {
    if (opened) ns.close();
  }
}

/**
 * Creates an object with exactly the saved id: sets `kernel.KIND_next_id`, then calls `create`.
 * A kernel that hands out another id (the sysctl is missing or ignored) is an error, after the
 * stray object is removed.
 */
export function createWithSavedId(kernel: Kernel, kind: IpcKind, savedId: number, create: () => number): number {
  kernel.sysvipc.setNextId(kind, savedId);
  const id = create();
  if (id !== savedId) {
    kernel.sysvipc.remove(kind, id);
    throw new TargetError(`${kind} id ${savedId} could not be recreated: the kernel gave id ${id}; is kernel.${kind}_next_id supported (cr check)?`);
  }
  return id;
}
