import {
  TargetError,
  describeSelector,
  hex,
  matchesSelector,
  type Attributes,
  type ExternalReference,
  type IpcKind,
  type IpcObjectInfo,
  type Kernel,
  type NamespaceHandle,
  type RestoreContext,
} from '@cr/core';

/** How a live SysV object must resemble the saved one to stand in for it. */
export interface StandIn {
  /** Attributes that must be equal, mapped or not: a segment's size, a set's semaphore count. */
  shape: readonly string[];
  /**
   * Whether a mapping may name an object with another id: cr attaches a segment itself, at the
   * id it is told; a queue or set id lives in the program's own memory, which cr does not change.
   */
  otherId: boolean;
}

/** Where an external SysV object is looked for: the IPC namespace the restored objects go into. */
interface LookIn {
  ns: NamespaceHandle | undefined;
  where: string;
}

/**
 * Finds the live object an external SysV reference names (its saved id, or `ref.mapTo`) in the
 * IPC namespace the restore goes into, and checks that it can stand in for the saved one.
 * Returns its id, which the process's memory is attached to.
 */
export function findLiveIpcObject(
  kernel: Kernel,
  kind: IpcKind,
  ref: ExternalReference,
  ctx: RestoreContext,
  standIn: StandIn,
  attributesOf: (info: IpcObjectInfo) => Attributes,
): number {
  const saved = ref.attributes;
  const what = describeReference(kind, ref, standIn);
  const look = lookIn(kernel, ctx);
  let live: IpcObjectInfo[];
  try {
    live = look.ns ? kernel.namespaces.within(look.ns, () => kernel.sysvipc.list(kind)) : [];
  } finally {
    if (look.ns) look.ns.close();
  }
  const selector = ref.mapTo ?? { id: saved.id! };
  const hits = live.filter((o) => matchesSelector(selector, attributesOf(o)));
  if (hits.length === 0) {
    const fix = ref.mapTo
      ? 'map it to an object that is there (ipcs lists them)'
      : ctx.options.into?.ipc
        ? 'restore it there first (cr restore of the image that holds it)'
        : 'restore into the IPC namespace that holds it with --into-ipc-ns PATH';
    throw new TargetError(`${ref.key} (${what}): no ${kind} with ${describeSelector(selector)} in ${look.where}; ${fix}`);
  }
  if (hits.length > 1) {
    throw new TargetError(`${ref.key} (${what}): ${hits.length} ${kind} objects have ${describeSelector(selector)} in ${look.where} (ids ${hits.map((h) => h.id).join(', ')}); select one by id`);
  }
  const found = attributesOf(hits[0]!);
  const differs = standIn.shape.filter((name) => found[name] !== saved[name]).map((name) => `${name} ${found[name]} (saved: ${saved[name]})`);
  if (ref.mapTo) {
    if (!standIn.otherId && found.id !== saved.id) {
      differs.push(`id ${found.id}, but the program holds ${kind} id ${saved.id} itself and cr cannot change that, so only an object with that id can stand in`);
    }
    if (differs.length > 0) throw new TargetError(`${ref.key} (${what}): refusing --map-external to ${kind} id ${found.id} in ${look.where}: it has ${differs.join('; ')}`);
  } else {
    if (found.key !== saved.key) differs.push(`key ${hex(Number(found.key))} (saved: ${hex(Number(saved.key))})`);
    if (differs.length > 0) throw new TargetError(`${ref.key} (${what}): ${kind} id ${found.id} in ${look.where} is another object: it has ${differs.join('; ')}`);
  }
  return Number(found.id);
}

/** "shm id 0, key 0x00005150, size 4096, used by mm:1234". */
function describeReference(kind: IpcKind, ref: ExternalReference, standIn: StandIn): string {
  const a = ref.attributes;
  const shape = standIn.shape.map((name) => `, ${name} ${a[name]}`).join('');
  const why = ref.usedBy.length > 0 ? `used by ${ref.usedBy.join(', ')}` : 'marked external';
  return `${kind} id ${a.id}, key ${hex(Number(a.key))}${shape}, ${why}`;
}

/**
 * The namespace the restored objects go into: `--into-ipc-ns`; else, when the image holds the
 * parent ipc-ns, a new one, empty until restore fills it; else cr's own, where the process goes.
 */
function lookIn(kernel: Kernel, ctx: RestoreContext): LookIn {
  const into = ctx.options.into?.ipc;
  if (into) return { ns: kernel.namespaces.fromPath(into, 'ipc'), where: into };
  const parent = ctx.parents.find((p) => ctx.saved(p));
  if (parent) return { ns: undefined, where: `the new IPC namespace restored from ${parent}, which starts empty` };
  return { ns: kernel.namespaces.current('ipc'), where: "cr's own IPC namespace" };
}
