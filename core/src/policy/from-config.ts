import type { Advice } from '@cr/schemas';
import type { ResolvedConfig } from '../config/load-config.js';
import { Policy, typeSelectionRules, typedRules, type RuleTyping, type Selections, type SourcedRule } from './policy.js';

/** Advice as it is applied to one checkpoint: its content and the file it was read from. */
export interface AppliedAdvice {
  file: string;
  advice: Advice;
}

const SELECTION_KEYS = ['only', 'include', 'exclude', 'external'] as const;

/**
 * The policy of one checkpoint: the default decision, then the rules of the config file and its
 * profile (`policy.rules`, then `checkpoint.*`), then the process's advice, then the flags; each
 * rule labelled with the source that set it and typed by `typing`. Rules given later win among
 * rules of the same kind.
 */
export function policyFromConfig({ config, sources }: ResolvedConfig, typing: RuleTyping, advice?: AppliedAdvice): Policy {
  const sourceOf = (key: keyof Selections) => sources[`checkpoint.${key}`] ?? 'default';
  const selectionSources = Object.fromEntries(SELECTION_KEYS.map((k) => [k, sourceOf(k)])) as Record<keyof Selections, string>;
  const selectedBy = (flags: boolean): Selections =>
    Object.fromEntries(SELECTION_KEYS.filter((k) => sourceOf(k).startsWith('flag ') === flags).map((k) => [k, config.checkpoint?.[k]]));
  const configured = typeSelectionRules(selectedBy(false), selectionSources);
  const flagged = typeSelectionRules(selectedBy(true), selectionSources);

  const rules: SourcedRule[] = [
    ...(config.policy?.rules ?? []).map((rule) => ({ rule, source: sources['policy.rules'] ?? 'default' })),
    ...configured.rules,
    ...(advice ? adviceRules(advice) : []),
    ...flagged.rules,
  ];
  const fallback = flagged.defaultDecision ??
    configured.defaultDecision ?? { decision: config.policy?.default ?? 'include', source: sources['policy.default'] ?? 'default' };
  return new Policy(fallback.decision, fallback.source, typedRules(rules, typing));
}

/** Advice's structured rules, then its include, exclude and external lists, all from its file. */
export function adviceRules({ file, advice }: AppliedAdvice): SourcedRule[] {
  const source = `advice ${file}`;
  return [
    ...(advice.rules ?? []).map((rule) => ({ rule, source })),
    ...typeSelectionRules(advice, { only: source, include: source, exclude: source, external: source }).rules,
  ];
}
