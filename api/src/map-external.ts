import { CrError, ExitCode } from '@cr/core';
import { parseSelector, typedRules, type ExternalMapping, type PluginRegistry } from '@cr/core/engine';

const MAPPING = /^([a-z][a-z0-9]*(?:-[a-z0-9]+)*):([a-z][a-zA-Z0-9]*=[^\s,=]+)=([a-z][a-zA-Z0-9]*=[^\s,=]+)$/;

/** "sysvipc-shm:id=5=id=7" → the reference of sysvipc-shm with id 5 is found as the one with id 7. */
export function parseMapExternal(text: string): ExternalMapping {
  const m = MAPPING.exec(text);
  if (!m) throw new CrError(`--map-external ${text}: expected TYPE:ATTR=VALUE=ATTR=VALUE, e.g. sysvipc-shm:id=5=id=7 or sysvipc-shm:key=0x1234=key=0x5678`, ExitCode.Usage);
  return { text, type: m[1]!, from: parseSelector(m[2]!), to: parseSelector(m[3]!) };
}

/** `mapping` with both selectors typed by the plugin of its type (`key=0x5150` → "0x00005150"), or a usage error. */
export function typedMapping(mapping: ExternalMapping, registry: PluginRegistry): ExternalMapping {
  const [from, to] = typedRules(
    [mapping.from, mapping.to].map((match) => ({ rule: { type: mapping.type, match, decision: 'external' as const }, source: `flag --map-external ${mapping.text}` })),
    registry,
  ).map(({ rule }) => rule.match!);
  return { ...mapping, from: from!, to: to! };
}
