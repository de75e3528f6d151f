import type { ResolvedConfig } from '../config/load-config.js';
import { Policy, typeSelectionRules, type SourcedRule } from './policy.js';

/**
 * The policy of one checkpoint from the resolved config: the default decision, then the
 * structured rules of `policy.rules`, then the selections of `checkpoint.only`/`include`/`exclude`
 * (which flags set), each rule labelled with the source that set it.
 */
export function policyFromConfig({ config, sources }: ResolvedConfig): Policy {
  const selection = typeSelectionRules(config.checkpoint ?? {}, {
    only: sources['checkpoint.only'] ?? 'default',
    include: sources['checkpoint.include'] ?? 'default',
    exclude: sources['checkpoint.exclude'] ?? 'default',
  });
  const rules: SourcedRule[] = (config.policy?.rules ?? []).map((rule) => ({ rule, source: sources['policy.rules'] ?? 'default' }));
  rules.push(...selection.rules);
  const fallback = selection.defaultDecision ?? { decision: config.policy?.default ?? 'include', source: sources['policy.default'] ?? 'default' };
  return new Policy(fallback.decision, fallback.source, rules);
}
