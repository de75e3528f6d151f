import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, Kernel } from '@cr/core';
import {
  DEFAULT_CONFIG,
  Policy,
  adviceRules,
  parseAdvice,
  parseSelection,
  policyFromConfig,
  pruneAdvice,
  readAdvice,
  removeAdvice,
  resolveConfig,
  typeSelectionRules,
  typedRules,
  writeAdvice,
} from '@cr/core/engine';
import type { Advice, CrConfig } from '@cr/schemas';
import { describe, expect, it } from 'vitest';
import { selectorRegistry } from './fake-plugin.js';

const registry = selectorRegistry();


describe('policy', () => {
  const policy = new Policy('include', 'default', [
    { rule: { type: 'sysvipc-shm', decision: 'exclude' }, source: 'config' },
    { rule: { type: 'sysvipc-shm', match: { key: '0x00001234' }, decision: 'include' }, source: 'flag --include' },
    { rule: { type: 'sysvipc-msg', match: { id: 3 }, decision: 'exclude' }, source: 'config' },
    { rule: { type: 'sysvipc-msg', match: { id: 3 }, decision: 'external' }, source: 'flag' },
  ]);

  it('object rule beats type rule beats default, and names the rule and its source', () => {
    expect(policy.decide({ type: 'sysvipc-shm', attributes: { id: 1, key: '0x00001234' } })).toEqual({ decision: 'include', rule: 'object sysvipc-shm key=0x00001234', source: 'flag --include' });
    expect(policy.decide({ type: 'sysvipc-shm', attributes: { id: 2, key: '0x00009999' } })).toEqual({ decision: 'exclude', rule: 'type sysvipc-shm', source: 'config' });
    expect(policy.decide({ type: 'uts-ns', attributes: {} })).toEqual({ decision: 'include', rule: 'default', source: 'default' });
  });

  it('lets the last of two rules of the same kind win', () => {
    expect(policy.decide({ type: 'sysvipc-msg', attributes: { id: 3 } }).decision).toBe('external');
    expect(policy.decide({ type: 'sysvipc-msg', attributes: { id: 4 } }).decision).toBe('include');
  });

  it('builds from config: --only turns the default to exclude', () => {
    const resolved = resolveConfig([
      { source: 'default', config: DEFAULT_CONFIG },
      { source: 'flag --only', config: { checkpoint: { only: ['uts-ns'] } } },
    ]);
    const p = policyFromConfig(resolved, registry);
    expect(p.decide({ type: 'uts-ns', attributes: {} })).toEqual({ decision: 'include', rule: 'type uts-ns', source: 'flag --only' });
    expect(p.decide({ type: 'ipc-ns', attributes: {} })).toEqual({ decision: 'exclude', rule: 'default', source: 'flag --only' });
  });
});

describe('selections from flags and config', () => {
  it('parses TYPE and TYPE:ATTR=VALUE, leaving the value to the attribute\'s type', () => {
    expect(parseSelection('sysvipc-shm', 'exclude')).toEqual({ type: 'sysvipc-shm', decision: 'exclude' });
    expect(parseSelection('sysvipc-shm:key=0x1234', 'include')).toEqual({ type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'include' });
    expect(parseSelection('sysvipc-msg:id=3', 'exclude')).toEqual({ type: 'sysvipc-msg', match: { id: '3' }, decision: 'exclude' });
  });

  it('skips shared memory in general but includes one segment (cradvise)', () => {
    const p = policyFromConfig(
      resolveConfig([
        { source: 'default', config: DEFAULT_CONFIG },
        { source: 'flag --exclude', config: { checkpoint: { exclude: ['sysvipc-shm'] } } },
        { source: 'flag --include', config: { checkpoint: { include: ['sysvipc-shm:key=0x1234'] } } },
      ]),
      registry,
    );
    expect(p.decide({ type: 'sysvipc-shm', attributes: { id: 5, key: '0x00001234' } }).decision).toBe('include');
    expect(p.decide({ type: 'sysvipc-shm', attributes: { id: 6, key: '0x00001235' } })).toEqual({ decision: 'exclude', rule: 'type sysvipc-shm', source: 'flag --exclude' });
  });
});

describe('policy matching details', () => {
  it('a lineage selects the process with that PID and every process below it, and no other', () => {
    for (const pid of ['50', '0x32', 50]) {
      const [typed] = typedRules([{ rule: { type: 'tasks', match: { subtree: pid }, decision: 'exclude' }, source: 's' }], registry);
      expect(typed!.rule.match, String(pid)).toEqual({ subtree: 50 });
      const p = new Policy('include', 'default', [typed!]);
      const decide = (subtree: string) => p.decide({ type: 'tasks', attributes: { pid: Number(subtree.split(' ').at(-1)), subtree } }).decision;
      expect(['10', '10 50', '10 50 60', '10 50 60 70', '10 20', '10 500', '10 5'].map(decide)).toEqual(['include', 'exclude', 'exclude', 'exclude', 'include', 'include', 'include']);
    }
  });

  it('a hex key "0x1234", "0X1234", "4660" and 4660 all select the segment with key 0x00001234', () => {
    for (const key of ['0x1234', '0X1234', '4660', 4660]) {
      const [typed] = typedRules([{ rule: { type: 'sysvipc-shm', match: { key }, decision: 'exclude' }, source: 's' }], registry);
      expect(typed!.rule.match, String(key)).toEqual({ key: '0x00001234' });
      const p = new Policy('include', 'default', [typed!]);
      expect(p.decide({ type: 'sysvipc-shm', attributes: { id: 9, key: '0x00001234' } }).decision, String(key)).toBe('exclude');
      expect(p.decide({ type: 'sysvipc-shm', attributes: { id: 9, key: '0x00001235' } }).decision, String(key)).toBe('include');
    }
  });

  it('a rule matches only when every attribute it names is equal, and never an object lacking one', () => {
    const p = new Policy('exclude', 'default', [{ rule: { type: 'sysvipc-msg', match: { id: 3, key: '0x00000010' }, decision: 'include' }, source: 's' }]);
    expect(p.decide({ type: 'sysvipc-msg', attributes: { id: 3, key: '0x00000010' } }).decision).toBe('include');
    expect(p.decide({ type: 'sysvipc-msg', attributes: { id: 3, key: '0x00000011' } }).decision).toBe('exclude');
    expect(p.decide({ type: 'sysvipc-msg', attributes: { id: 3 } }).decision).toBe('exclude');
    expect(p.decide({ type: 'sysvipc-shm', attributes: { id: 3, key: '0x00000010' } }).decision).toBe('exclude');
  });

  it('string attributes compare as strings', () => {
    const p = new Policy('include', 'default', [{ rule: { type: 'files', match: { path: '/tmp/a' }, decision: 'external' }, source: 's' }]);
    expect(p.decide({ type: 'files', attributes: { path: '/tmp/a' } })).toEqual({ decision: 'external', rule: 'object files path=/tmp/a', source: 's' });
    expect(p.decide({ type: 'files', attributes: { path: '/tmp/b' } }).decision).toBe('include');
  });

  it('an object rule wins over a type rule given after it', () => {
    const p = new Policy('include', 'default', [
      { rule: { type: 'sysvipc-shm', match: { id: 5 }, decision: 'include' }, source: 'advice' },
      { rule: { type: 'sysvipc-shm', decision: 'exclude' }, source: 'flag --exclude' },
    ]);
    expect(p.decide({ type: 'sysvipc-shm', attributes: { id: 5 } })).toEqual({ decision: 'include', rule: 'object sysvipc-shm id=5', source: 'advice' });
    expect(p.decide({ type: 'sysvipc-shm', attributes: { id: 6 } })).toEqual({ decision: 'exclude', rule: 'type sysvipc-shm', source: 'flag --exclude' });
  });

  it('a later type rule overrides an earlier one for the same type', () => {
    const p = new Policy('include', 'default', [
      { rule: { type: 'ipc-ns', decision: 'exclude' }, source: 'file' },
      { rule: { type: 'ipc-ns', decision: 'include' }, source: 'flag' },
    ]);
    expect(p.decide({ type: 'ipc-ns', attributes: {} })).toEqual({ decision: 'include', rule: 'type ipc-ns', source: 'flag' });
  });
});

describe('typeSelectionRules', () => {
  it('turns only/include/exclude/external into rules labelled with their sources, in that order', () => {
    const { defaultDecision, rules } = typeSelectionRules(
      { only: ['uts-ns', 'ipc-ns'], include: ['sysvipc-shm:key=0x1234'], exclude: ['ipc-ns', 'sysvipc-msg:id=3'], external: ['sysvipc-sem:key=0x99'] },
      { only: 'flag --only', include: 'file f', exclude: 'flag --exclude', external: 'flag --external' },
    );
    expect(defaultDecision).toEqual({ decision: 'exclude', source: 'flag --only' });
    expect(rules).toEqual([
      { rule: { type: 'uts-ns', decision: 'include' }, source: 'flag --only' },
      { rule: { type: 'ipc-ns', decision: 'include' }, source: 'flag --only' },
      { rule: { type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'include' }, source: 'file f' },
      { rule: { type: 'ipc-ns', decision: 'exclude' }, source: 'flag --exclude' },
      { rule: { type: 'sysvipc-msg', match: { id: '3' }, decision: 'exclude' }, source: 'flag --exclude' },
      { rule: { type: 'sysvipc-sem', match: { key: '0x99' }, decision: 'external' }, source: 'flag --external' },
    ]);
  });

  it('leaves the default alone when nothing is listed under only', () => {
    expect(typeSelectionRules({ only: [], exclude: ['ipc-ns'] }, { only: 'a', include: 'b', exclude: 'c', external: 'd' }).defaultDecision).toBeUndefined();
  });

  it('--only with --exclude of a listed type: the exclusion, given later, wins', () => {
    const p = policyFromConfig(
      resolveConfig([
        { source: 'default', config: DEFAULT_CONFIG },
        { source: 'flag --only', config: { checkpoint: { only: ['uts-ns', 'ipc-ns'] } } },
        { source: 'flag --exclude', config: { checkpoint: { exclude: ['ipc-ns'] } } },
      ]),
      registry,
    );
    expect(p.decide({ type: 'uts-ns', attributes: {} }).decision).toBe('include');
    expect(p.decide({ type: 'ipc-ns', attributes: {} })).toEqual({ decision: 'exclude', rule: 'type ipc-ns', source: 'flag --exclude' });
    expect(p.decide({ type: 'sysvipc-sem', attributes: {} })).toEqual({ decision: 'exclude', rule: 'default', source: 'flag --only' });
  });

  it('policy.default and policy.rules from a file, flags after them', () => {
    const p = policyFromConfig(
      resolveConfig([
        { source: 'default', config: DEFAULT_CONFIG },
        { source: 'file /x/.crrc', config: { policy: { default: 'external', rules: [{ type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'exclude' }] } } },
        { source: 'flag --include', config: { checkpoint: { include: ['sysvipc-shm:key=4660'] } } },
      ]),
      registry,
    );
    expect(p.decide({ type: 'uts-ns', attributes: {} })).toEqual({ decision: 'external', rule: 'default', source: 'file /x/.crrc' });
    expect(p.decide({ type: 'sysvipc-shm', attributes: { key: '0x00001234' } })).toEqual({ decision: 'include', rule: 'object sysvipc-shm key=0x00001234', source: 'flag --include' });
  });
});

describe('selectors per type', () => {
  const rule = (type: string, match: Record<string, string | number> | undefined, decision: 'include' | 'exclude' | 'external' = 'exclude') => ({
    rule: { type, ...(match ? { match } : {}), decision },
    source: 's',
  });

  it('files by path glob: * stays within a directory, ** crosses them, ? is one character', () => {
    const p = new Policy('include', 'default', [rule('files', { path: '/var/log/*' }), rule('files', { path: '/srv/**/cache' }), rule('files', { path: '/tmp/job-?.lock' })]);
    const decision = (path: string) => p.decide({ type: 'files', attributes: { pid: 7, fd: 3, path } }).decision;
    expect(decision('/var/log/app.log')).toBe('exclude');
    expect(decision('/var/log/.hidden')).toBe('exclude');
    expect(decision('/var/log/nginx/access.log')).toBe('include');
    expect(decision('/srv/a/b/cache')).toBe('exclude');
    expect(decision('/srv/cache/x')).toBe('include');
    expect(decision('/tmp/job-1.lock')).toBe('exclude');
    expect(decision('/tmp/job-12.lock')).toBe('include');
    expect(p.decide({ type: 'files', attributes: { path: '/var/log/a' } }).rule).toBe('object files path=/var/log/*');
  });

  it('files by fd number, tasks by pid or comm (a glob too)', () => {
    const p = new Policy('include', 'default', typedRules([rule('files', { fd: '5' }), rule('tasks', { comm: 'worker-*' }), rule('tasks', { pid: '0x10' })], registry));
    expect(p.decide({ type: 'files', attributes: { pid: 1, fd: 5, path: '/x' } }).decision).toBe('exclude');
    expect(p.decide({ type: 'files', attributes: { pid: 1, fd: 6, path: '/x' } }).decision).toBe('include');
    expect(p.decide({ type: 'tasks', attributes: { pid: 99, comm: 'worker-3' } }).decision).toBe('exclude');
    expect(p.decide({ type: 'tasks', attributes: { pid: 99, comm: 'master' } }).decision).toBe('include');
    expect(p.decide({ type: 'tasks', attributes: { pid: 16, comm: 'master' } }).decision).toBe('exclude');
  });

  it('a value without glob characters is compared exactly, even where it looks like a path prefix', () => {
    const p = new Policy('include', 'default', [rule('files', { path: '/var/log' })]);
    expect(p.decide({ type: 'files', attributes: { path: '/var/log' } }).decision).toBe('exclude');
    expect(p.decide({ type: 'files', attributes: { path: '/var/log/a' } }).decision).toBe('include');
  });

  it('groups: a rule for "sysvipc" or "namespaces" applies to every type in it, and namespaces by kind', () => {
    const shm = { type: 'sysvipc-shm', groups: ['sysvipc'], attributes: { id: 5, key: '0x00001234' } };
    const msg = { type: 'sysvipc-msg', groups: ['sysvipc'], attributes: { id: 3, key: '0x00000099' } };
    const uts = { type: 'uts-ns', groups: ['namespaces'], attributes: { inode: 1, kind: 'uts' } };
    const ipc = { type: 'ipc-ns', groups: ['namespaces'], attributes: { inode: 2, kind: 'ipc' } };
    const p = new Policy('include', 'default', [
      rule('sysvipc', undefined, 'external'),
      rule('sysvipc-shm', { key: '0x00001234' }, 'include'),
      rule('namespaces', undefined, 'exclude'),
      rule('namespaces', { kind: 'uts' }, 'include'),
    ]);
    expect(p.decide(msg)).toEqual({ decision: 'external', rule: 'type sysvipc', source: 's' });
    expect(p.decide(shm)).toEqual({ decision: 'include', rule: 'object sysvipc-shm key=0x00001234', source: 's' });
    expect(p.decide(ipc)).toEqual({ decision: 'exclude', rule: 'type namespaces', source: 's' });
    expect(p.decide(uts)).toEqual({ decision: 'include', rule: 'object namespaces kind=uts', source: 's' });
    // A type without the group is not touched by it.
    expect(p.decide({ type: 'sysvipc-shm', attributes: { id: 5, key: '0x00001235' } }).decision).toBe('include');
  });

  it('a group rule and a type rule are both type rules: the later one wins', () => {
    const shm = { type: 'sysvipc-shm', groups: ['sysvipc'], attributes: { id: 1, key: '0x00000001' } };
    expect(new Policy('include', 'default', [rule('sysvipc', undefined, 'exclude'), rule('sysvipc-shm', undefined, 'include')]).decide(shm).decision).toBe('include');
    expect(new Policy('include', 'default', [rule('sysvipc-shm', undefined, 'include'), rule('sysvipc', undefined, 'exclude')]).decide(shm).decision).toBe('exclude');
  });

  it('ruleFor says whether any rule applies, apart from the default and the fallback', () => {
    const p = new Policy('external', 'file f', [rule('files', { fd: 1 })]);
    expect(p.ruleFor({ type: 'files', attributes: { fd: 1 } })?.source).toBe('s');
    expect(p.ruleFor({ type: 'files', attributes: { fd: 2 } })).toBeUndefined();
    const fallback = { decision: 'exclude' as const, rule: 'below tasks:1', source: 'flag --exclude' };
    expect(p.decide({ type: 'files', attributes: { fd: 2 } }, fallback)).toBe(fallback);
    expect(p.decide({ type: 'files', attributes: { fd: 2 } })).toEqual({ decision: 'external', rule: 'default', source: 'file f' });
  });

  it('parses globs, paths and external selections', () => {
    expect(parseSelection('files:path=/var/log/*', 'exclude')).toEqual({ type: 'files', match: { path: '/var/log/*' }, decision: 'exclude' });
    expect(parseSelection('files:fd=3', 'exclude')).toEqual({ type: 'files', match: { fd: '3' }, decision: 'exclude' });
    expect(parseSelection('namespaces:kind=uts', 'include')).toEqual({ type: 'namespaces', match: { kind: 'uts' }, decision: 'include' });
    const { rules } = typeSelectionRules({ external: ['sysvipc', 'sysvipc-msg:key=0x5151'] }, { only: 'a', include: 'b', exclude: 'c', external: 'flag --external' });
    expect(rules).toEqual([
      { rule: { type: 'sysvipc', decision: 'external' }, source: 'flag --external' },
      { rule: { type: 'sysvipc-msg', match: { key: '0x5151' }, decision: 'external' }, source: 'flag --external' },
    ]);
  });
});

describe('advice in the policy: after the config, before flags', () => {
  const advice = (a: Advice) => ({ file: '/run/cr/advice/42-1000.json', advice: a });
  const layers = (...extra: { source: string; config: CrConfig }[]) => resolveConfig([{ source: 'default', config: DEFAULT_CONFIG }, ...extra]);
  const shm = (id: number, key: number) => ({ type: 'sysvipc-shm', groups: ['sysvipc'], attributes: { id, key: `0x${key.toString(16).padStart(8, '0')}` } });

  it('advice beats a config rule of the same kind, and is labelled with its file', () => {
    const p = policyFromConfig(
      layers({ source: 'file /etc/.crrc', config: { checkpoint: { include: ['sysvipc-shm'] }, policy: { rules: [{ type: 'sysvipc-shm', match: { id: 5 }, decision: 'include' }] } } }),
      registry,
      advice({ exclude: ['sysvipc-shm'], rules: [{ type: 'sysvipc-shm', match: { id: 5 }, decision: 'external' }] }),
    );
    expect(p.decide(shm(6, 6))).toEqual({ decision: 'exclude', rule: 'type sysvipc-shm', source: 'advice /run/cr/advice/42-1000.json' });
    expect(p.decide(shm(5, 5))).toEqual({ decision: 'external', rule: 'object sysvipc-shm id=5', source: 'advice /run/cr/advice/42-1000.json' });
  });

  it('"skip shared memory in general, but include this segment" (cradvise), and a flag still beats both', () => {
    const a = advice({ exclude: ['sysvipc-shm'], include: ['sysvipc-shm:key=0x1234'] });
    const p = policyFromConfig(layers(), registry, a);
    expect(p.decide(shm(1, 0x1234)).decision).toBe('include');
    expect(p.decide(shm(2, 0x9999)).decision).toBe('exclude');
    const flagged = policyFromConfig(layers({ source: 'flag --exclude', config: { checkpoint: { exclude: ['sysvipc-shm:key=0x1234'] } } }), registry, a);
    expect(flagged.decide(shm(1, 0x1234))).toEqual({ decision: 'exclude', rule: 'object sysvipc-shm key=0x00001234', source: 'flag --exclude' });
  });

  it('a config file selection stays before the advice while a flag selection of another key comes after it', () => {
    const p = policyFromConfig(
      layers(
        { source: 'file /x/.crrc', config: { checkpoint: { exclude: ['sysvipc-msg'] } } },
        { source: 'flag --include', config: { checkpoint: { include: ['sysvipc-sem'] } } },
      ),
      registry,
      advice({ include: ['sysvipc-msg'], exclude: ['sysvipc-sem'] }),
    );
    expect(p.decide({ type: 'sysvipc-msg', attributes: {} }).source).toBe('advice /run/cr/advice/42-1000.json');
    expect(p.decide({ type: 'sysvipc-sem', attributes: {} })).toEqual({ decision: 'include', rule: 'type sysvipc-sem', source: 'flag --include' });
  });

  it('a profile layer counts as config: before advice', () => {
    const p = policyFromConfig(layers({ source: 'profile nosysv of /x/.crrc', config: { checkpoint: { exclude: ['sysvipc'] } } }), registry, advice({ include: ['sysvipc-shm'] }));
    expect(p.decide(shm(1, 1)).source).toBe('advice /run/cr/advice/42-1000.json');
    expect(p.decide({ type: 'sysvipc-msg', groups: ['sysvipc'], attributes: {} })).toEqual({ decision: 'exclude', rule: 'type sysvipc', source: 'profile nosysv of /x/.crrc' });
  });

  it('adviceRules: structured rules first, then include, exclude, external', () => {
    const rules = adviceRules(advice({ external: ['sysvipc-msg:id=3'], include: ['ipc-ns'], rules: [{ type: 'files', match: { fd: 4 }, decision: 'exclude' }] }));
    expect(rules.map((r) => [r.rule.type, r.rule.decision])).toEqual([
      ['files', 'exclude'],
      ['ipc-ns', 'include'],
      ['sysvipc-msg', 'external'],
    ]);
    expect(new Set(rules.map((r) => r.source))).toEqual(new Set(['advice /run/cr/advice/42-1000.json']));
  });
});

describe('advice files', () => {
  it('are validated with the file and the key path named (exit 3)', () => {
    const err = (() => {
      try {
        return parseAdvice('/run/cr/advice/1-2.json', JSON.stringify({ exclude: ['sysvipc', 'Not A Type'], include: 'ipc-ns', extra: true }));
      } catch (e) {
        return e;
      }
    })() as ConfigError;
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.exitCode).toBe(3);
    expect(err.message.split('\n')[0]).toBe('invalid advice in /run/cr/advice/1-2.json:');
    expect(err.message).toContain('at "exclude[1]": found "Not A Type"');
    expect(err.message).toContain('at "include": found "ipc-ns"');
    expect(err.message).toContain('found unknown key "extra"');
  });

  it('must be JSON', () => {
    expect(() => parseAdvice('/a/1-2.json', 'exclude: [sysvipc]')).toThrowError(/^invalid advice in \/a\/1-2.json: not JSON/);
  });

  it('are kept per PID and start time, and a gone process loses them', () => {
    const top = mkdtempSync(join(tmpdir(), 'cr-advice-'));
    const dir = join(top, 'advice');
    try {
      const kernel = new Kernel();
      const { procfs } = kernel;
      const own = join(dir, String(process.geteuid!()));
      const file = writeAdvice(dir, kernel, process.pid, { exclude: ['sysvipc'] });
      expect(file).toBe(join(own, `${process.pid}-${procfs.stat(process.pid).startTime}.json`));
      // Created world-writable and sticky, so that programs of any user can make their own directory in it.
      expect(statSync(dir).mode & 0o7777).toBe(0o1777);
      expect(readAdvice(dir, kernel, process.pid)).toEqual({ advice: { file, advice: { exclude: ['sysvipc'] } }, warnings: [] });
      // The same PID with another start time is another process: a stale file is pruned, ours kept.
      writeFileSync(join(own, `${process.pid}-1.json`), '{}');
      expect(pruneAdvice(dir, kernel)).toEqual([join(own, `${process.pid}-1.json`)]);
      expect(readdirSync(own)).toEqual([`${process.pid}-${procfs.stat(process.pid).startTime}.json`]);
      expect(removeAdvice(dir, kernel, process.pid)).toBe(true);
      expect(readAdvice(dir, kernel, process.pid)).toEqual({ warnings: [] });
    } finally {
      rmSync(top, { recursive: true, force: true });
    }
  });
});
