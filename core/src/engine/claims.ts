import type { ObjectEntry, PolicyDecision } from '@cr/schemas';
import { PluginError } from '../errors.js';
import type { ResourceGraph } from '../graph/resource-graph.js';
import type { ResourceNode } from '../plugin/contract.js';
import type { Refusal } from './refusals.js';

/** Which collected object owns each claimed kernel object (`fd:PID:N` → its node). */
export type Owners = ReadonlyMap<string, ResourceNode>;

/**
 * The owner of every kernel object some collected object claims. Two claims of one object are a
 * PluginError naming both objects and their plugins: cr cannot know which of the two to save.
 */
export function claimOwners(graph: ResourceGraph, sourceOf: (type: string) => string): Owners {
  const owners = new Map<string, ResourceNode>();
  for (const node of graph.all()) {
    for (const object of node.claims ?? []) {
      const first = owners.get(object);
      if (first && first.key !== node.key) {
        throw new PluginError(
          `${object} is claimed twice: by ${first.key} (plugin ${sourceOf(first.type)}) and by ${node.key} (plugin ${sourceOf(node.type)}); ` +
            'each kernel object is saved by one plugin only: remove one of them from the config\'s plugins',
        );
      }
      owners.set(object, node);
    }
  }
  return owners;
}

/** The decision of an object whose kernel object another object claims: left to that one. */
export function ownedElsewhere(node: ResourceNode, owners: Owners): PolicyDecision | undefined {
  const owner = node.defers && owners.get(node.defers.object);
  if (!owner || owner.key === node.key) return undefined;
  return { decision: 'exclude', rule: `claim of ${owner.key}`, source: `plugin ${owner.type}` };
}

/**
 * The included objects whose plugin cannot save them and whose kernel object nobody claims, each
 * with its plugin's message.
 */
export function unownedRefusals(graph: ResourceGraph, decided: ReadonlyMap<string, Pick<ObjectEntry, 'policy'>>, owners: Owners): Refusal[] {
  return graph
    .all()
    .filter((n) => n.defers?.unsupported !== undefined && !owners.has(n.defers.object) && decided.get(n.key)?.policy.decision === 'include')
    .map((n) => ({ key: n.key, reason: n.defers!.unsupported! }));
}
