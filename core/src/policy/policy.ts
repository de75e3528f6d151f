import type { Decision, PolicyDecision, PolicyRule } from '@cr/schemas';
import picomatch from 'picomatch';
import { CrError, ExitCode } from '../errors.js';
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

  /**
   * The object rules that select none of `subjects`, the objects collected: a selector that
   * matches nothing is most likely a mistake (a wrong key, a process without that file).
   */
  unmatched(subjects: readonly PolicySubject[]): SourcedRule[] {
    return this.rules.filter(
      ({ rule }) => rule.match && !subjects.some((s) => [s.type, ...(s.groups ?? [])].includes(rule.type) && matchesSelector(rule.match!, s.attributes)),
    );
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

/** "sysvipc-shm:key=0x00001234", as a flag would write the rule's selector. */
export function describeSelection(rule: PolicyRule): string {
  return rule.match ? `${rule.type}:${describeSelector(rule.match)}` : rule.type;
}

export function describeSelector(match: Readonly<Record<string, string | number>>): string {
  return Object.entries(match)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

const GLOB_CHARS = /[*?[\]{}]/;

/**
 * Whether every attribute a selector names has the wanted value. The selector is typed (see
 * PluginRegistry.typedRule), so values compare exactly, except that a wanted string with glob
 * characters matches as a glob ("/var/log/*": `*` stays within one directory, `**` crosses them).
 */
export function matchesSelector(match: Readonly<Record<string, string | number>>, attributes: Attributes): boolean {
  return Object.entries(match).every(([name, wanted]) => {
    const actual = attributes[name];
    if (typeof actual === 'string' && typeof wanted === 'string' && GLOB_CHARS.test(wanted)) return picomatch.isMatch(actual, wanted, { dot: true });
    // A lineage ("4242 4250 4260", see selector-types.ts) is selected by any number in it.
    if (typeof actual === 'string' && typeof wanted === 'number') return actual.split(' ').includes(String(wanted));
    return actual === wanted;
  });
}

/** "ATTR=VALUE" → {ATTR: "VALUE"}; the attribute's type says what VALUE means (PluginRegistry.typedRule). */
export function parseSelector(selector: string): Record<string, string> {
  const at = selector.indexOf('=');
  return { [selector.slice(0, at)]: selector.slice(at + 1) };
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

/** What types rules: the plugin registry, which knows every type's selectable attributes. */
export interface RuleTyping {
  typedRule(rule: PolicyRule): PolicyRule;
}

/**
 * Each rule typed (see PluginRegistry.typedRule). An error names the rule's source, with exit
 * code 2 when a flag gave it, 3 when a file (config, profile, advice) did.
 */
export function typedRules(rules: readonly SourcedRule[], typing: RuleTyping): SourcedRule[] {
  return rules.map(({ rule, source }) => {
    try {
      return { rule: typing.typedRule(rule), source };
    } catch (err) {
      if (!(err instanceof CrError)) throw err;
      throw new CrError(`${source}: ${err.message}`, source.startsWith('flag ') ? ExitCode.Usage : ExitCode.Config);
    }
  });
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
