import { PluginError } from '../errors.js';

/** Types whose objects must exist before those of `type`: its declared dependencies and its parents. */
export interface TypeDependencies {
  type: string;
  needs: readonly string[];
  /** Who declared it, for error messages (a package name). */
  declaredBy: string;
}

const isTargetType = (type: string) => type.startsWith('target:');

/**
 * Orders resource types so that every type comes after the types it needs. An unknown type or a
 * cycle is a PluginError that names the types and the packages involved.
 */
export function orderTypes(types: readonly TypeDependencies[]): string[] {
  const byType = new Map(types.map((t) => [t.type, t]));
  for (const t of types) {
    for (const need of t.needs) {
      if (!isTargetType(need) && !byType.has(need)) {
        throw new PluginError(
          `plugin ${t.declaredBy} (type ${t.type}) needs type "${need}", which no installed plugin provides; ` +
            `install a plugin for "${need}" or remove ${t.declaredBy} from the config's plugins`,
        );
      }
    }
  }

  const order: string[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (type: string, path: string[]): void => {
    const seen = state.get(type);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(type)), type];
      const who = [...new Set(cycle.map((c) => byType.get(c)!.declaredBy))].join(', ');
      throw new PluginError(`resource types depend on each other in a cycle: ${cycle.join(' → ')} (declared by ${who}); one of these plugins must drop a dependency`);
    }
    state.set(type, 'visiting');
    for (const need of [...byType.get(type)!.needs].sort()) {
      if (!isTargetType(need)) visit(need, [...path, type]);
    }
    state.set(type, 'done');
    order.push(type);
  };
  for (const type of [...byType.keys()].sort()) visit(type, []);
  return order;
}
