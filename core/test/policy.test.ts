import { DEFAULT_CONFIG, Policy, parseSelection, policyFromConfig, resolveConfig, typeSelectionRules } from '@cr/core';
import { describe, expect, it } from 'vitest';

describe('policy', () => {
  const policy = new Policy('include', 'default', [
    { rule: { type: 'sysvipc-shm', decision: 'exclude' }, source: 'config' },
    { rule: { type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'include' }, source: 'flag --include' },
    { rule: { type: 'sysvipc-msg', match: { id: 3 }, decision: 'exclude' }, source: 'config' },
    { rule: { type: 'sysvipc-msg', match: { id: 3 }, decision: 'external' }, source: 'flag' },
  ]);

  it('object rule beats type rule beats default, and names the rule and its source', () => {
    expect(policy.decide('sysvipc-shm', { id: 1, key: 0x1234 })).toEqual({ decision: 'include', rule: 'object sysvipc-shm key=0x1234', source: 'flag --include' });
    expect(policy.decide('sysvipc-shm', { id: 2, key: 0x9999 })).toEqual({ decision: 'exclude', rule: 'type sysvipc-shm', source: 'config' });
    expect(policy.decide('uts-ns', {})).toEqual({ decision: 'include', rule: 'default', source: 'default' });
  });

  it('lets the last of two rules of the same kind win', () => {
    expect(policy.decide('sysvipc-msg', { id: 3 }).decision).toBe('external');
    expect(policy.decide('sysvipc-msg', { id: 4 }).decision).toBe('include');
  });

  it('builds from config: --only turns the default to exclude', () => {
    const resolved = resolveConfig([
      { source: 'default', config: DEFAULT_CONFIG },
      { source: 'flag --only', config: { checkpoint: { only: ['uts-ns'] } } },
    ]);
    const p = policyFromConfig(resolved);
    expect(p.decide('uts-ns', {})).toEqual({ decision: 'include', rule: 'type uts-ns', source: 'flag --only' });
    expect(p.decide('ipc-ns', {})).toEqual({ decision: 'exclude', rule: 'default', source: 'flag --only' });
  });
});

describe('selections from flags and config', () => {
  it('parses TYPE and TYPE:ATTR=VALUE', () => {
    expect(parseSelection('sysvipc-shm', 'exclude')).toEqual({ type: 'sysvipc-shm', decision: 'exclude' });
    expect(parseSelection('sysvipc-shm:key=0x1234', 'include')).toEqual({ type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'include' });
    expect(parseSelection('sysvipc-msg:id=3', 'exclude')).toEqual({ type: 'sysvipc-msg', match: { id: 3 }, decision: 'exclude' });
  });

  it('skips shared memory in general but includes one segment (cradvise)', () => {
    const p = policyFromConfig(
      resolveConfig([
        { source: 'default', config: DEFAULT_CONFIG },
        { source: 'flag --exclude', config: { checkpoint: { exclude: ['sysvipc-shm'] } } },
        { source: 'flag --include', config: { checkpoint: { include: ['sysvipc-shm:key=0x1234'] } } },
      ]),
    );
    expect(p.decide('sysvipc-shm', { id: 5, key: 0x1234 }).decision).toBe('include');
    expect(p.decide('sysvipc-shm', { id: 6, key: 0x1235 })).toEqual({ decision: 'exclude', rule: 'type sysvipc-shm', source: 'flag --exclude' });
  });
});

describe('policy matching details', () => {
  it('a hex key "0x1234" matches the numeric attribute 4660, as do "4660" and 4660', () => {
    for (const key of ['0x1234', '0X1234', '4660', 4660]) {
      const p = new Policy('include', 'default', [{ rule: { type: 'sysvipc-shm', match: { key }, decision: 'exclude' }, source: 's' }]);
      expect(p.decide('sysvipc-shm', { id: 9, key: 4660 }).decision, String(key)).toBe('exclude');
      expect(p.decide('sysvipc-shm', { id: 9, key: 4661 }).decision, String(key)).toBe('include');
    }
  });

  it('a rule matches only when every attribute it names is equal, and never an object lacking one', () => {
    const p = new Policy('exclude', 'default', [{ rule: { type: 'sysvipc-msg', match: { id: 3, key: '0x10' }, decision: 'include' }, source: 's' }]);
    expect(p.decide('sysvipc-msg', { id: 3, key: 16 }).decision).toBe('include');
    expect(p.decide('sysvipc-msg', { id: 3, key: 17 }).decision).toBe('exclude');
    expect(p.decide('sysvipc-msg', { id: 3 }).decision).toBe('exclude');
    expect(p.decide('sysvipc-shm', { id: 3, key: 16 }).decision).toBe('exclude');
  });

  it('string attributes compare as strings', () => {
    const p = new Policy('include', 'default', [{ rule: { type: 'files', match: { path: '/tmp/a' }, decision: 'external' }, source: 's' }]);
    expect(p.decide('files', { path: '/tmp/a' })).toEqual({ decision: 'external', rule: 'object files path=/tmp/a', source: 's' });
    expect(p.decide('files', { path: '/tmp/b' }).decision).toBe('include');
  });

  it('an object rule wins over a type rule given after it', () => {
    const p = new Policy('include', 'default', [
      { rule: { type: 'sysvipc-shm', match: { id: 5 }, decision: 'include' }, source: 'advice' },
      { rule: { type: 'sysvipc-shm', decision: 'exclude' }, source: 'flag --exclude' },
    ]);
    expect(p.decide('sysvipc-shm', { id: 5 })).toEqual({ decision: 'include', rule: 'object sysvipc-shm id=5', source: 'advice' });
    expect(p.decide('sysvipc-shm', { id: 6 })).toEqual({ decision: 'exclude', rule: 'type sysvipc-shm', source: 'flag --exclude' });
  });

  it('a later type rule overrides an earlier one for the same type', () => {
    const p = new Policy('include', 'default', [
      { rule: { type: 'ipc-ns', decision: 'exclude' }, source: 'file' },
      { rule: { type: 'ipc-ns', decision: 'include' }, source: 'flag' },
    ]);
    expect(p.decide('ipc-ns', {})).toEqual({ decision: 'include', rule: 'type ipc-ns', source: 'flag' });
  });
});

describe('typeSelectionRules', () => {
  it('turns only/include/exclude into rules labelled with their sources, in that order', () => {
    const { defaultDecision, rules } = typeSelectionRules(
      { only: ['uts-ns', 'ipc-ns'], include: ['sysvipc-shm:key=0x1234'], exclude: ['ipc-ns', 'sysvipc-msg:id=3'] },
      { only: 'flag --only', include: 'file f', exclude: 'flag --exclude' },
    );
    expect(defaultDecision).toEqual({ decision: 'exclude', source: 'flag --only' });
    expect(rules).toEqual([
      { rule: { type: 'uts-ns', decision: 'include' }, source: 'flag --only' },
      { rule: { type: 'ipc-ns', decision: 'include' }, source: 'flag --only' },
      { rule: { type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'include' }, source: 'file f' },
      { rule: { type: 'ipc-ns', decision: 'exclude' }, source: 'flag --exclude' },
      { rule: { type: 'sysvipc-msg', match: { id: 3 }, decision: 'exclude' }, source: 'flag --exclude' },
    ]);
  });

  it('leaves the default alone when nothing is listed under only', () => {
    expect(typeSelectionRules({ only: [], exclude: ['ipc-ns'] }, { only: 'a', include: 'b', exclude: 'c' }).defaultDecision).toBeUndefined();
  });

  it('--only with --exclude of a listed type: the exclusion, given later, wins', () => {
    const p = policyFromConfig(
      resolveConfig([
        { source: 'default', config: DEFAULT_CONFIG },
        { source: 'flag --only', config: { checkpoint: { only: ['uts-ns', 'ipc-ns'] } } },
        { source: 'flag --exclude', config: { checkpoint: { exclude: ['ipc-ns'] } } },
      ]),
    );
    expect(p.decide('uts-ns', {}).decision).toBe('include');
    expect(p.decide('ipc-ns', {})).toEqual({ decision: 'exclude', rule: 'type ipc-ns', source: 'flag --exclude' });
    expect(p.decide('sysvipc-sem', {})).toEqual({ decision: 'exclude', rule: 'default', source: 'flag --only' });
  });

  it('policy.default and policy.rules from a file, flags after them', () => {
    const p = policyFromConfig(
      resolveConfig([
        { source: 'default', config: DEFAULT_CONFIG },
        { source: 'file /x/.crrc', config: { policy: { default: 'external', rules: [{ type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'exclude' }] } } },
        { source: 'flag --include', config: { checkpoint: { include: ['sysvipc-shm:key=4660'] } } },
      ]),
    );
    expect(p.decide('uts-ns', {})).toEqual({ decision: 'external', rule: 'default', source: 'file /x/.crrc' });
    expect(p.decide('sysvipc-shm', { key: 0x1234 })).toEqual({ decision: 'include', rule: 'object sysvipc-shm key=4660', source: 'flag --include' });
  });
});
