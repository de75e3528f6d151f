import type { IpcNsTargetHandle, ProcessTargetHandle } from '../engine/targets.js';
import { TARGET_IPC_NS, TARGET_PROCESS, type ImageObject, type ResourceNode } from './contract.js';

/**
 * A typed reference to the objects of one resource type, for the plugins that use them: it builds
 * their keys and hands out what their plugin collected (`H`) or restored (`T`) with those types,
 * so that no plugin spells another's keys or casts another's handles. The plugin that owns the
 * type exports it (`TASKS` from @cr/plugin-tasks) and takes its `type` from it.
 */
export class ObjectType<H, T> {
  constructor(readonly type: string) {}

  /** The key of the object with this id: `${type}:${id}`. */
  key(id: string | number): string {
    return `${this.type}:${id}`;
  }

  /** Whether a node is of this type. */
  is(node: ResourceNode): node is ResourceNode<H> {
    return node.type === this.type;
  }

  /** The node as one of this type, with its handle typed; a node of another type is cr's bug or the plugin's. */
  node(node: ResourceNode): ResourceNode<H> {
    if (!this.is(node)) throw new Error(`internal error: ${node.key} is not of type ${this.type}`);
    return node;
  }

  /** The handle of a node of this type (see `node`). */
  handleOf(node: ResourceNode): H {
    return this.node(node).handle;
  }

  /** What the object with this id was restored (or found, if external) as, if it was already. */
  restored(ctx: { restored<R>(key: string): R | undefined }, id: string | number): T | undefined {
    return ctx.restored<T>(this.key(id));
  }

  /** What the first parent of this type (among `ctx.parents`) was restored as, if it was. */
  restoredParent(ctx: { readonly parents: readonly string[]; restored<R>(key: string): R | undefined }): T | undefined {
    const parent = ctx.parents.find((key) => key.startsWith(`${this.type}:`));
    return parent === undefined ? undefined : ctx.restored<T>(parent);
  }

  /** The object with this id in the image being checked (`RecordCheckContext.object`). */
  inImage(ctx: { object(key: string): ImageObject | undefined }, id: string | number): ImageObject | undefined {
    return ctx.object(this.key(id));
  }

  /** Whether the object with this id is among `parents` (keys, as `ctx.parents` gives them). */
  isAmong(parents: readonly string[], id: string | number): boolean {
    return parents.includes(this.key(id));
  }
}

/** A typed reference to the objects of `type`, collected as `H` and restored as `T`. */
export function objectType<H, T = unknown>(type: string): ObjectType<H, T> {
  return new ObjectType<H, T>(type);
}

/** The root node of `cr checkpoint PID`. */
export const PROCESS_TARGET = objectType<ProcessTargetHandle, never>(TARGET_PROCESS);
/** The root node of `cr checkpoint --ipc-ns PATH`. */
export const IPC_NS_TARGET = objectType<IpcNsTargetHandle, never>(TARGET_IPC_NS);
