import type { Decision, PolicyDecision, PolicyRule } from '@cr/schemas';
import picomatch from 'picomatch';
import type { Attributes } from '../plugin/contract.js';

/** A rule together with where it came from ("file /home/u/.crrc.yaml", "advice …", "flag --exclude" …). */
export interface SourcedRule {
  rule: PolicyRule;
  source: string;
}

/** What rules are matched against: an object's type, the groups its type is in, its attributes. */
export interface PolicySubject {
  type: string;
  /** Names that select the type together with others: "sysvipc", "namespaces". */
  groups?: readonly string[];
  attributes: Attributes;
}

/**
 * Decides, for each collected object, include / exclude / external. An object rule (one with
 * `match`) beats a type rule, which beats the default; among rules of the same kind the one given
 * last wins, so sources are appended in order config → advice → flags.
 */
export class Policy {
  constructor(
    private readonly defaultDecision: Decision = 'include',
    private readonly defaultSource = 'default',
    private readonly rules: readonly SourcedRule[] = [],
  ) {}

  /** The rule that decides `subject`, if any rule applies to it at all. */
  ruleFor(subject: PolicySubject): SourcedRule | undefined {
    const names = [subject.type, ...(subject.groups ?? [])];
    let typeRule: SourcedRule | undefined;
    let objectRule: SourcedRule | undefined;
    for (const r of this.rules) {
      if (!names.includes(r.rule.type)) continue;
      if (!r.rule.match) typeRule = r;
      else if (matchesSelector(r.rule.match, subject.attributes)) objectRule = r;
    }
    return objectRule ?? typeRule;
  }

  /** `fallback` stands in for the default where a plugin, or a parent left out, decided the object. */
  decide(subject: PolicySubject, fallback?: PolicyDecision): PolicyDecision {
    const winner = this.ruleFor(subject);
    if (!winner) return fallback ?? { decision: this.defaultDecision, rule: 'default', source: this.defaultSource };
    return { decision: winner.rule.decision, rule: describeRule(winner.rule), source: winner.source };
  }
}

export function describeRule(rule: PolicyRule): string {
  if (!rule.match) return `type ${rule.type}`;
  return `object ${rule.type} ${describeSelector(rule.match)}`;
}

export function describeSelector(match: Readonly<Record<string, string | number>>): string {
  return Object.entries(match)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

const GLOB_CHARS = /[*?[\]{}]/;

/**
 * Whether every attribute a selector names has the wanted value: numbers compare as numbers
 * ("0x1234", "4660" and 4660 are the same key), strings exactly, or as a glob when the wanted
 * value has glob characters ("/var/log/*": `*` stays within one directory, `**` crosses them).
 */
export function matchesSelector(match: Readonly<Record<string, string | number>>, attributes: Attributes): boolean {
  return Object.entries(match).every(([name, wanted]) => {
    const actual = attributes[name];
    if (actual === undefined) return false;
    if (typeof actual === 'number') return toNumber(wanted) === actual;
    const text = String(wanted);
    return GLOB_CHARS.test(text) ? picomatch.isMatch(actual, text, { dot: true }) : text === actual;
  });
}

/** "0x1234", "4660" and 4660 all mean the same key. */
function toNumber(value: string | number): number {
  if (typeof value === 'number') return value;
  const n = /^-?0x[0-9a-f]+$/i.test(value) ? Number.parseInt(value, 16) * (value.startsWith('-') ? -1 : 1) : Number(value);
  return Number.isFinite(n) ? n : Number.NaN;
}

/** "ATTR=VALUE" → {ATTR: VALUE}, with a decimal VALUE as a number. */
export function parseSelector(selector: string): Record<string, string | number> {
  const at = selector.indexOf('=');
  const name = selector.slice(0, at);
  const value = selector.slice(at + 1);
  return { [name]: /^[0-9]+$/.test(value) ? Number(value) : value };
}

/** "sysvipc-shm:key=0x1234" → an object rule; "sysvipc-shm" → a type rule. */
export function parseSelection(selection: string, decision: Decision): PolicyRule {
  const colon = selection.indexOf(':');
  if (colon < 0) return { type: selection, decision };
  return { type: selection.slice(0, colon), match: parseSelector(selection.slice(colon + 1)), decision };
}

export interface Selections {
  only?: readonly string[];
  include?: readonly string[];
  exclude?: readonly string[];
  external?: readonly string[];
}

/** Where each list of a `Selections` came from. */
export type SelectionSources = Record<keyof Selections, string>;

/**
 * The rules that `--only`, `--include`, `--exclude` and `--external` (or the same keys under
 * `checkpoint` in a config file, or in advice) stand for: `only` turns the default to exclude and
 * includes the listed types; the others take types or single objects ("sysvipc-shm:key=0x1234").
 */
export function typeSelectionRules(
  selection: Selections,
  source: SelectionSources,
): { defaultDecision?: { decision: Decision; source: string }; rules: SourcedRule[] } {
  const rules: SourcedRule[] = [];
  for (const type of selection.only ?? []) rules.push({ rule: { type, decision: 'include' }, source: source.only });
  for (const decision of ['include', 'exclude', 'external'] as const) {
    for (const s of selection[decision] ?? []) rules.push({ rule: parseSelection(s, decision), source: source[decision] });
  }
  return {
    defaultDecision: selection.only?.length ? { decision: 'exclude', source: source.only } : undefined,
    rules,
  };
}
