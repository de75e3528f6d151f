import type { ObjectEntry } from '@cr/schemas';
import { UnsupportedError } from '../errors.js';
import type { ResourceGraph } from '../graph/resource-graph.js';
import type { PluginRegistry } from '../plugin/registry.js';
import { unownedRefusals, type Owners } from './claims.js';

/** An included object cr cannot save, and why, in a message that names it and says what to do. */
export interface Refusal {
  key: string;
  reason: string;
}

/**
 * Every refusal of every included object: a descriptor nobody claims, and whatever each plugin's
 * `refusals` reports. All of them, so that a user learns in one run everything that blocks a
 * checkpoint.
 */
export async function refusalsOf(graph: ResourceGraph, decided: ReadonlyMap<string, Pick<ObjectEntry, 'policy'>>, owners: Owners, registry: PluginRegistry): Promise<Refusal[]> {
  const found = unownedRefusals(graph, decided, owners);
  for (const type of registry.orderedTypes()) {
    const { plugin } = registry.get(type);
    if (!plugin.refusals) continue;
    for (const node of graph.ofType(type)) {
      if (decided.get(node.key)?.policy.decision !== 'include') continue;
      for (const reason of await plugin.refusals(node)) found.push({ key: node.key, reason });
    }
  }
  return found;
}

/** The error a checkpoint stops with: the one refusal's message, or every refusal on a line of its own. */
export function refusalError(refusals: readonly Refusal[]): UnsupportedError {
  if (refusals.length === 1) return new UnsupportedError(refusals[0]!.reason);
  return new UnsupportedError(`${refusals.length} objects cannot be checkpointed:\n${refusals.map((r) => `  ${r.reason}`).join('\n')}`);
}
