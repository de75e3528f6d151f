import { CrError, ExitCode } from '../errors.js';
import type { ResourcePlugin } from '../plugin/contract.js';

/**
 * Refuses an `--inherit-fd N=PATH` whose N is none of the descriptors the image says pointed
 * outside the checkpoint: it would be ignored, and the user would not learn of the typo.
 */
export function assertInheritFdsUsed(given: Readonly<Record<number, string>> | undefined, records: readonly { plugin: ResourcePlugin; record: unknown }[]): void {
  const asked = Object.keys(given ?? {}).map(Number);
  if (asked.length === 0) return;
  const inheritable = new Set(records.flatMap(({ plugin, record }) => plugin.inheritableFds?.(record) ?? []));
  const unused = asked.filter((fd) => !inheritable.has(fd));
  if (unused.length === 0) return;
  const those = inheritable.size > 0 ? `those that did: ${[...inheritable].sort((a, b) => a - b).join(', ')}` : 'none did';
  throw new CrError(
    `--inherit-fd ${unused[0]}=${given![unused[0]!]}: no descriptor ${unused[0]} of the image pointed outside the checkpoint (${those}); leave it out or give one of those`,
    ExitCode.Usage,
  );
}
