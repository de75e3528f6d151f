import { CrError, ExitCode } from '../errors.js';
import { hex } from '../kernel/sysvipc.js';
import type { AttributeType, Attributes } from '../plugin/contract.js';

/** The attributes objects of a type (or group) can be selected by, with their types. */
export type SelectableAttributes = Readonly<Record<string, AttributeType>>;

const MAX_KEY = 0xffff_ffff;
const INTEGER = /^(?:0x[0-9a-f]+|[0-9]+)$/i;
/**
 * How objects hold a lineage: their own number and those of the objects they descend from, in
 * decimal, separated by spaces, the topmost first ("4242 4250 4260"); a selector gives one number.
 */
const LINEAGE = /^[0-9]+(?: [0-9]+)*$/;

/** "unsigned integer", "IPC key" …: what a value of `type` is, for messages. */
export function describeAttributeType(type: AttributeType): string {
  if (typeof type === 'object') return `one of ${type.oneOf.join(', ')}`;
  return { uint: 'unsigned integer', key: 'IPC key, e.g. 0x0000abcd', string: 'text or glob', lineage: 'PID: that process and every one below it' }[type];
}

/**
 * The value a selector's `raw` stands for as objects hold an attribute of `type` ("0x1234",
 * "4660" and 4660 as a uint are 4660; as a key, "0x00001234"), or what is wrong with it, to
 * follow the attribute's name ("must be an unsigned integer …").
 */
export function typedValue(type: AttributeType, raw: string | number): { value: string | number } | { problem: string } {
  if (typeof type === 'object') return type.oneOf.includes(String(raw)) ? { value: String(raw) } : { problem: `must be one of ${type.oneOf.join(', ')}` };
  if (type === 'string') return { value: String(raw) };
  const n = typeof raw === 'number' ? raw : INTEGER.test(raw) ? Number(raw) : Number.NaN;
  if (type === 'uint' || type === 'lineage') return Number.isSafeInteger(n) && n >= 0 ? { value: n } : { problem: 'must be an unsigned integer, in decimal or 0x hex' };
  if (Number.isInteger(n) && n >= 0 && n <= MAX_KEY) return { value: hex(n) };
  const signed = typeof raw === 'number' ? raw : /^-[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (Number.isInteger(signed) && signed < 0 && signed >= -(2 ** 31)) {
    return { problem: `must be unsigned: ${signed} is how /proc/sysvipc shows key ${hex(signed)}; write ${hex(signed)}` };
  }
  return { problem: 'must be an unsigned 32-bit IPC key, 0 to 0xffffffff, in hex or decimal' };
}

/** "id (unsigned integer), key (IPC key, e.g. 0x0000abcd)". */
export function describeSelectable(selectable: SelectableAttributes): string {
  return Object.entries(selectable)
    .map(([name, type]) => `${name} (${describeAttributeType(type)})`)
    .join(', ');
}

/**
 * A selector of objects of `name` with each value as the objects hold it; a usage error naming
 * the selector `text` when it names an attribute they cannot be selected by, listing those they
 * can, or gives a value not of the attribute's type.
 */
export function typedMatch(name: string, text: string, match: Readonly<Record<string, string | number>>, selectable: SelectableAttributes): Record<string, string | number> {
  const typed: Record<string, string | number> = {};
  for (const [attribute, raw] of Object.entries(match)) {
    const type = selectable[attribute];
    if (type === undefined) {
      const valid = Object.keys(selectable).length > 0 ? `select them by ${describeSelectable(selectable)}` : `its plugin declares no attributes to select them by, so select the type as a whole: ${name}`;
      throw new CrError(`${text}: ${name} objects have no attribute "${attribute}"; ${valid}`, ExitCode.Usage);
    }
    const checked = typedValue(type, raw);
    if ('problem' in checked) throw new CrError(`${text}: ${attribute} ${checked.problem}`, ExitCode.Usage);
    typed[attribute] = checked.value;
  }
  return typed;
}

/** Where the attributes a plugin collected are not in the typed form it declared: "key -1 (IPC key …)". */
export function untypedAttributes(attributes: Attributes, selectable: SelectableAttributes): string[] {
  return Object.entries(selectable).flatMap(([name, type]) => {
    const value = attributes[name];
    if (value === undefined) return [];
    if (type === 'lineage') return typeof value === 'string' && LINEAGE.test(value) ? [] : [`${name} ${JSON.stringify(value)} (PIDs separated by spaces)`];
    const checked = typedValue(type, value);
    return 'value' in checked && checked.value === value ? [] : [`${name} ${JSON.stringify(value)} (${describeAttributeType(type)})`];
  });
}
