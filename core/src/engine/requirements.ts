import type { ObjectEntry } from '@cr/schemas';
import { UnsupportedError } from '../errors.js';
import type { ResourceGraph } from '../graph/resource-graph.js';

/**
 * Refuses, before anything is saved, an included object that requires another (a process its
 * child) which the policy leaves out: the restored objects could not be whole. The message names
 * the object left out, the rule that did it, and the plugin's reason.
 */
export function refuseUnmetRequirements(graph: ResourceGraph, decided: ReadonlyMap<string, Pick<ObjectEntry, 'policy'>>): void {
  for (const node of graph.all()) {
    if (decided.get(node.key)?.policy.decision !== 'include') continue;
    for (const { key, why } of node.requires ?? []) {
      const other = decided.get(key)?.policy;
      if (!other || other.decision === 'include') continue;
      throw new UnsupportedError(`${key} is left out (${other.decision} by ${other.rule}), but ${node.key} is saved and ${why}`);
    }
  }
}
