import type { CollectedObject, ResourceNode } from '../plugin/contract.js';

interface MutableNode extends ResourceNode {
  parents: string[];
  claims?: readonly string[];
  uses?: readonly string[];
  release?: () => void;
}

/**
 * The objects found during one checkpoint. An object reached from several parents (an IPC
 * namespace shared by two tasks) is one node with several parents: the kernel work's object hash.
 */
export class ResourceGraph {
  private readonly nodes = new Map<string, MutableNode>();

  /** Adds what a plugin collected below `parent` (or the root, without one); the same key again is one node. */
  add(type: string, object: CollectedObject, parent?: string): ResourceNode {
    const key = `${type}:${object.id}`;
    const existing = this.nodes.get(key);
    if (existing) {
      if (parent && !existing.parents.includes(parent)) existing.parents.push(parent);
      // Found again from another parent (a description a child inherited): what it claims and
      // uses there is the same object's too.
      if (object.claims?.length) existing.claims = union(existing.claims, object.claims);
      if (object.uses?.length) existing.uses = union(existing.uses, object.uses);
      object.release?.();
      return existing;
    }
    const { id, handle, attributes = {}, release, defaultDecision, uses, claims, defers, requires } = object;
    const node: MutableNode = {
      key,
      type,
      id,
      handle,
      attributes,
      parents: parent ? [parent] : [],
      release,
      ...(defaultDecision ? { defaultDecision } : {}),
      ...(uses?.length ? { uses } : {}),
      ...(claims?.length ? { claims } : {}),
      ...(defers ? { defers } : {}),
      ...(requires?.length ? { requires } : {}),
    };
    this.nodes.set(key, node);
    return node;
  }

  ofType(type: string): ResourceNode[] {
    return [...this.nodes.values()].filter((n) => n.type === type);
  }

  all(): ResourceNode[] {
    return [...this.nodes.values()];
  }

  /** Lets go of every handle the plugins opened while collecting. */
  release(): void {
    for (const node of this.nodes.values()) {
      try {
        node.release?.();
      } catch {
        // A handle that will not close must not hide the checkpoint's own result or error.
      }
    }
    this.nodes.clear();
  }
}

function union(a: readonly string[] | undefined, b: readonly string[]): string[] {
  return [...new Set([...(a ?? []), ...b])];
}
