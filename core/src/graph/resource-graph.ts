import type { Attributes, DefaultDecision, ResourceNode } from '../plugin/contract.js';

interface MutableNode extends ResourceNode {
  parents: string[];
  release?: () => void;
}

/**
 * The objects found during one checkpoint. An object reached from several parents (an IPC
 * namespace shared by two tasks) is one node with several parents: the kernel work's object hash.
 */
export class ResourceGraph {
  private readonly nodes = new Map<string, MutableNode>();

  add(
    type: string,
    id: string,
    handle: unknown,
    attributes: Attributes,
    parent: string | undefined,
    release?: () => void,
    defaultDecision?: DefaultDecision,
  ): ResourceNode {
    const key = `${type}:${id}`;
    const existing = this.nodes.get(key);
    if (existing) {
      if (parent && !existing.parents.includes(parent)) existing.parents.push(parent);
      release?.();
      return existing;
    }
    const node: MutableNode = { key, type, id, handle, attributes, parents: parent ? [parent] : [], release, ...(defaultDecision ? { defaultDecision } : {}) };
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
