import type { ObjectEntry } from '@cr/schemas';
import { CrError, ExitCode, TargetError } from '../errors.js';
import type { Attributes, ExternalReference, RestoreContext } from '../plugin/contract.js';
import type { PluginRegistry } from '../plugin/registry.js';
import { describeSelector, matchesSelector } from '../policy/policy.js';

/**
 * `--map-external TYPE:ATTR=VALUE=ATTR=VALUE`: the external reference of TYPE selected by the
 * first selector is to be found as the live object selected by the second.
 */
export interface ExternalMapping {
  /** As the user wrote it, for messages. */
  text: string;
  type: string;
  from: Attributes;
  to: Attributes;
}

/** The external references of an image: objects it names without holding them. */
export function externalReferences(objects: readonly ObjectEntry[]): ObjectEntry[] {
  return objects.filter((o) => o.reference && !o.record);
}

/** Each mapping's reference key → the attributes to find instead; refuses a mapping that selects no reference, or several. */
export function resolveMappings(mappings: readonly ExternalMapping[], references: readonly ObjectEntry[]): Map<string, Attributes> {
  const resolved = new Map<string, Attributes>();
  const listed = references.map((r) => `${r.key} (${describeSelector(r.attributes)})`).join(', ') || 'none';
  for (const m of mappings) {
    const hits = references.filter((r) => r.type === m.type && matchesSelector(m.from, r.attributes));
    if (hits.length !== 1) {
      const what = hits.length === 0 ? `the image has no external reference of type ${m.type} with ${describeSelector(m.from)}` : `it selects ${hits.length} references (${hits.map((h) => h.key).join(', ')}); select one by id`;
      throw new CrError(`--map-external ${m.text}: ${what}; the image's external references: ${listed}`, ExitCode.Usage);
    }
    const key = hits[0]!.key;
    if (resolved.has(key)) throw new CrError(`--map-external ${m.text}: ${key} is already mapped by an earlier --map-external`, ExitCode.Usage);
    resolved.set(key, m.to);
  }
  return resolved;
}

/**
 * Asks each reference's plugin to find the live object, before anything is changed, and returns
 * what they found by key. Every reference is looked for, so that one error names all that are
 * missing. A type whose plugin cannot look (no `findExternal`) is not checked.
 */
export async function findExternals(
  references: readonly ObjectEntry[],
  mapTo: ReadonlyMap<string, Attributes>,
  registry: PluginRegistry,
  contextFor: (entry: ObjectEntry) => RestoreContext,
  imageDir: string,
): Promise<Map<string, unknown>> {
  const found = new Map<string, unknown>();
  const problems: CrError[] = [];
  for (const entry of references) {
    if (!registry.has(entry.type)) {
      problems.push(new TargetError(`${entry.key}: no installed plugin handles type "${entry.type}", so cr cannot look for it; install the plugin that saved the image`));
      continue;
    }
    const { plugin, source } = registry.get(entry.type);
    if (!plugin.findExternal) {
      if (mapTo.has(entry.key)) problems.push(new CrError(`${entry.key}: ${source} cannot look for ${entry.type} objects, so --map-external cannot apply to it`, ExitCode.Usage));
      continue;
    }
    const ref: ExternalReference = {
      key: entry.key,
      type: entry.type,
      id: entry.id,
      attributes: entry.attributes,
      usedBy: entry.reference?.usedBy ?? [],
      ...(mapTo.has(entry.key) ? { mapTo: mapTo.get(entry.key)! } : {}),
    };
    try {
      found.set(entry.key, await plugin.findExternal(ref, contextFor(entry)));
    } catch (err) {
      if (!(err instanceof CrError)) throw err;
      problems.push(err);
    }
  }
  if (problems.length > 0) {
    throw new CrError(
      `cannot restore ${imageDir}: it refers to ${problems.length === 1 ? 'an object' : 'objects'} it did not save, which must exist; nothing was changed:\n  ${problems.map((p) => p.message).join('\n  ')}`,
      problems[0]!.exitCode,
    );
  }
  return found;
}
