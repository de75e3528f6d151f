import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginError, TARGET_PROCESS, UnsupportedError, type CollectedObject } from '@cr/core';
import { CheckpointEngine, Policy, PluginRegistry, createCrContainer } from '@cr/core/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { fakePlugin } from './fake-plugin.js';
import { targetProcess } from './target-process.js';

const sleeper = targetProcess();

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const target = () => ({ kind: 'process' as const, pid: sleeper.pid });

/**
 * A "desc" plugin that collects one object per descriptor (as the files plugin does) and a
 * "queue" plugin (as a third-party one would) below the same parent, each object shaped by the
 * test; every freeze, thaw and save is logged.
 */
function setUp(log: string[], desc: CollectedObject[], queue: CollectedObject[], extra: CollectedObject[] = []) {
  dir = mkdtempSync(join(tmpdir(), 'cr-claims-'));
  const container = createCrContainer();
  const registry = container.resolve(PluginRegistry);
  const plugin = (type: string, objects: CollectedObject[]) =>
    fakePlugin(type, {
      collectsFrom: type === 'proc' ? [TARGET_PROCESS] : ['proc'],
      collect: () => objects,
      ...(type === 'proc' ? { freeze: () => void log.push('freeze'), thaw: () => void log.push('thaw') } : {}),
      save: (node) => {
        log.push(`save ${node.key}`);
        return {};
      },
    });
  registry.register(plugin('proc', [{ id: '1', handle: 1 }]), 'proc-pkg');
  registry.register(plugin('desc', desc), 'desc-pkg');
  registry.register(plugin('queue', queue), 'queue-pkg');
  registry.register(plugin('other', extra), 'other-pkg');
  return container.resolve(CheckpointEngine);
}

const checkpoint = (engine: CheckpointEngine, policy = new Policy()) => engine.checkpoint({ target: target(), imageDir: join(dir, 'img'), policy });

describe('claims: one owner per kernel object', () => {
  it('two objects claiming one kernel object are refused, naming both and their plugins, before anything is saved', async () => {
    const log: string[] = [];
    const engine = setUp(log, [{ id: '1:3', handle: 3, claims: ['fd:1:3'] }], [{ id: '1:3', handle: 3, claims: ['fd:1:3'] }]);
    const err = await checkpoint(engine).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toBe(
      "fd:1:3 is claimed twice: by desc:1:3 (plugin desc-pkg) and by queue:1:3 (plugin queue-pkg); each kernel object is saved by one plugin only: remove one of them from the config's plugins",
    );
    expect(log).toEqual(['freeze', 'thaw']);
    expect(readdirSync(dir)).toEqual([]);
    await expect(engine.plan(target(), new Policy())).rejects.toThrowError(/fd:1:3 is claimed twice/);
  });

  it('an object deferring to a claimed kernel object is left to its claimant, whatever the rules say', async () => {
    const log: string[] = [];
    const engine = setUp(
      log,
      [
        { id: '1:3', handle: 3, attributes: { fd: 3 }, defers: { object: 'fd:1:3', unsupported: 'fd 3 is a queue' } },
        { id: '1:4', handle: 4, claims: ['fd:1:4'] },
      ],
      [{ id: '1:3', handle: 3, claims: ['fd:1:3'] }],
    );
    const policy = new Policy('include', 'default', [{ rule: { type: 'desc', match: { fd: 3 }, decision: 'include' }, source: 'flag --include' }]);
    const { objects: planned } = await engine.plan(target(), policy);
    expect(planned.find((o) => o.key === 'desc:1:3')!.policy).toEqual({ decision: 'exclude', rule: 'claim of queue:1:3', source: 'plugin queue' });
    const result = await checkpoint(engine, policy);
    expect(log).toEqual(['freeze', 'save proc:1', 'save desc:1:4', 'save queue:1:3', 'thaw']);
    expect(result.objects.find((o) => o.key === 'desc:1:3')!.record).toBeUndefined();
  });

  it('unsupported objects nobody claims are all refused with their messages before anything is saved, unless a rule leaves them out', async () => {
    const log: string[] = [];
    const desc = [
      { id: '1:3', handle: 3, attributes: { fd: 3 }, defers: { object: 'fd:1:3', unsupported: 'PID 1: fd 3 is an eventfd' } },
      { id: '1:4', handle: 4, attributes: { fd: 4 }, defers: { object: 'fd:1:4', unsupported: 'PID 1: fd 4 is a pipe' } },
    ];
    const engine = setUp(log, desc, []);
    const err = await checkpoint(engine).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsupportedError);
    expect((err as Error).message).toBe('2 objects cannot be checkpointed:\n  PID 1: fd 3 is an eventfd\n  PID 1: fd 4 is a pipe');
    expect(log).toEqual(['freeze', 'thaw']);
    expect(readdirSync(dir)).toEqual([]);
    expect((await engine.plan(target(), new Policy())).refusals).toEqual([
      { key: 'desc:1:3', reason: 'PID 1: fd 3 is an eventfd' },
      { key: 'desc:1:4', reason: 'PID 1: fd 4 is a pipe' },
    ]);

    log.length = 0;
    const leaveOut = new Policy('include', 'default', [{ rule: { type: 'desc', match: { fd: 3 }, decision: 'exclude' }, source: 'flag --exclude' }]);
    await expect(checkpoint(engine, leaveOut)).rejects.toThrowError(/^PID 1: fd 4 is a pipe$/);
    await checkpoint(engine, new Policy('include', 'default', [{ rule: { type: 'desc', decision: 'exclude' }, source: 'flag --exclude' }]));
    expect(log.filter((l) => l.startsWith('save'))).toEqual(['save proc:1']);
  });

  it("plugins' own refusals of included objects are reported with the unclaimed ones, all at once, before anything is saved", async () => {
    const log: string[] = [];
    dir = mkdtempSync(join(tmpdir(), 'cr-claims-'));
    const container = createCrContainer();
    const registry = container.resolve(PluginRegistry);
    registry.register(fakePlugin('proc', { collect: () => [{ id: '1', handle: 1 }], freeze: () => void log.push('freeze'), thaw: () => void log.push('thaw') }), 'proc-pkg');
    registry.register(
      fakePlugin('sock', {
        collectsFrom: ['proc'],
        selectableBy: { fd: 'uint' },
        collect: () => [3, 4, 5].map((fd) => ({ id: `1:${fd}`, handle: fd, attributes: { fd } })),
        refusals: (node) => (node.handle === 4 ? [] : [`fd ${String(node.handle)} is connected outside`]),
        save: (node) => (log.push(`save ${node.key}`), {}),
      }),
      'sock-pkg',
    );
    registry.register(
      fakePlugin('desc', { collectsFrom: ['proc'], collect: () => [{ id: '1:6', handle: 6, defers: { object: 'fd:1:6', unsupported: 'fd 6 is a memfd' } }] }),
      'desc-pkg',
    );
    const engine = container.resolve(CheckpointEngine);
    expect((await engine.plan(target(), new Policy())).refusals).toEqual([
      { key: 'desc:1:6', reason: 'fd 6 is a memfd' },
      { key: 'sock:1:3', reason: 'fd 3 is connected outside' },
      { key: 'sock:1:5', reason: 'fd 5 is connected outside' },
    ]);
    await expect(checkpoint(engine)).rejects.toThrowError('3 objects cannot be checkpointed:\n  fd 6 is a memfd\n  fd 3 is connected outside\n  fd 5 is connected outside');
    expect(log).toEqual(['freeze', 'thaw']);
    // An excluded object is not asked.
    const leaveOut = new Policy('include', 'default', [
      { rule: { type: 'sock', match: { fd: 3 }, decision: 'exclude' }, source: 'flag --exclude' },
      { rule: { type: 'desc', decision: 'exclude' }, source: 'flag --exclude' },
    ]);
    expect((await engine.plan(target(), leaveOut)).refusals).toEqual([{ key: 'sock:1:5', reason: 'fd 5 is connected outside' }]);
  });

  it('an object deferring without a refusal is saved by its own plugin when nobody claims its kernel object', async () => {
    const log: string[] = [];
    const engine = setUp(log, [{ id: '1:1', handle: 1, defers: { object: 'fd:1:1' } }], [], [{ id: 'x', handle: 'x', claims: ['fd:1:2'] }]);
    await checkpoint(engine);
    expect(log).toEqual(['freeze', 'save proc:1', 'save desc:1:1', 'save other:x', 'thaw']);
  });
});
