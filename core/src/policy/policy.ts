import type { Decision, PolicyDecision, PolicyRule } from '@cr/schemas';
import type { Attributes } from '../plugin/contract.js';

/** A rule together with where it came from ("config /home/u/.crrc.yaml", "flag --exclude" …). */
export interface SourcedRule {
  rule: PolicyRule;
  source: string;
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

  /** `fallback` stands in for the default where a plugin, or an external parent, decided the object. */
  decide(type: string, attributes: Attributes, fallback?: PolicyDecision): PolicyDecision {
    let typeRule: SourcedRule | undefined;
    let objectRule: SourcedRule | undefined;
    for (const r of this.rules) {
      if (r.rule.type !== type) continue;
      if (!r.rule.match) typeRule = r;
      else if (matches(r.rule.match, attributes)) objectRule = r;
    }
    const winner = objectRule ?? typeRule;
    if (!winner) return fallback ?? { decision: this.defaultDecision, rule: 'default', source: this.defaultSource };
    return { decision: winner.rule.decision, rule: describeRule(winner.rule), source: winner.source };
  }
}

export function describeRule(rule: PolicyRule): string {
  if (!rule.match) return `type ${rule.type}`;
  return `object ${rule.type} ${Object.entries(rule.match)
    .map(([k, v]) => `${k}=${v}`)
    .join(',')}`;
}

function matches(match: Readonly<Record<string, string | number>>, attributes: Attributes): boolean {
  return Object.entries(match).every(([name, wanted]) => {
    const actual = attributes[name];
    if (actual === undefined) return false;
    if (typeof actual === 'number') return toNumber(wanted) === actual;
    return String(wanted) === actual;
  });
}

/** "0x1234", "4660" and 4660 all mean the same key. */
function toNumber(value: string | number): number {
  if (typeof value === 'number') return value;
  const n = /^-?0x[0-9a-f]+$/i.test(value) ? Number.parseInt(value, 16) * (value.startsWith('-') ? -1 : 1) : Number(value);
  return Number.isFinite(n) ? n : Number.NaN;
}

/** "sysvipc-shm:key=0x1234" → a rule; "sysvipc-shm" → a type rule. */
export function parseSelection(selection: string, decision: Decision): PolicyRule {
  const [type, selector] = selection.split(':', 2) as [string, string | undefined];
  if (selector === undefined) return { type, decision };
  const [name, value] = selector.split('=', 2) as [string, string];
  return { type, match: { [name]: /^[0-9]+$/.test(value) ? Number(value) : value }, decision };
}

/**
 * The rules that `--only`, `--include` and `--exclude` (or the same keys under `checkpoint` in a
 * config file) stand for: `only` turns the default to exclude and includes the listed types;
 * `include` and `exclude` take types or single objects ("sysvipc-shm:key=0x1234").
 */
export function typeSelectionRules(
  selection: { only?: readonly string[]; include?: readonly string[]; exclude?: readonly string[] },
  source: { only: string; include: string; exclude: string },
): { defaultDecision?: { decision: Decision; source: string }; rules: SourcedRule[] } {
  const rules: SourcedRule[] = [];
  for (const type of selection.only ?? []) rules.push({ rule: { type, decision: 'include' }, source: source.only });
  for (const s of selection.include ?? []) rules.push({ rule: parseSelection(s, 'include'), source: source.include });
  for (const s of selection.exclude ?? []) rules.push({ rule: parseSelection(s, 'exclude'), source: source.exclude });
  return {
    defaultDecision: selection.only?.length ? { decision: 'exclude', source: source.only } : undefined,
    rules,
  };
}
