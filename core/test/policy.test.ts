import { DEFAULT_CONFIG, Policy, parseSelection, policyFromConfig, resolveConfig } from '@cr/core';
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
