import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CollectAgainError,
  CrError,
  ExitCode,
  ImageError,
  PluginError,
  TARGET_PROCESS,
  TargetError,
  UnsupportedError,
  type CollectedObject,
  type ResourceNode,
  type ResourcePlugin,
} from '@cr/core';
import {
  CheckpointEngine,
  ImageReader,
  Policy,
  PluginRegistry,
  RestoreEngine,
  createCrContainer,
} from '@cr/core/engine';
import type { DependencyContainer } from 'tsyringe';
import { z } from 'zod';
import { afterEach, describe, expect, it } from 'vitest';
import { fakePlugin } from './fake-plugin.js';
import { targetProcess } from './target-process.js';

const sleeper = targetProcess();

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

/** The registered plugin of a type, for a test to replace its parts. */
function pluginOf(container: DependencyContainer, type: string): { -readonly [K in keyof ResourcePlugin]: ResourcePlugin[K] } {
  return container.resolve(PluginRegistry).get(type).plugin;
}

/** parent → shared (found below both "left" and "right") → leaf; records what happens, in order. */
function setUp(log: string[], failRestoreOf?: string) {
  const container = createCrContainer();
  const registry = container.resolve(PluginRegistry);
  const plugin = (type: string, collectsFrom: string[], ids: (parent: ResourceNode) => string[]) =>
    fakePlugin(type, {
      collectsFrom,
      collect: (parent) => ids(parent).map((id) => ({ id, handle: id })),
      save: (node) => {
        log.push(`save ${node.key} below ${node.parents.join('+')}`);
        return {};
      },
      restore: (_r, ctx) => {
        if (ctx.key.startsWith(`${failRestoreOf}:`)) throw new Error(`cannot restore ${ctx.key}`);
        log.push(`restore ${ctx.key}`);
        return ctx.key;
      },
      rollback: (_r, value) => {
        log.push(`rollback ${String(value)}`);
      },
    });
  registry.register(plugin('leaf', ['shared'], () => ['1']), 'leaf-pkg');
  registry.register(plugin('shared', ['side'], () => ['s']), 'shared-pkg');
  registry.register(plugin('side', [TARGET_PROCESS], () => ['left', 'right']), 'side-pkg');
  return container;
}

describe('engine', () => {
  it('saves a shared object once, with both parents, in dependency order', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    const container = setUp(log);
    const result = await container.resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: sleeper.pid }, imageDir: join(dir, 'img'), policy: new Policy() });
    expect(log).toEqual(['save side:left below target:process:' + sleeper.pid, 'save side:right below target:process:' + sleeper.pid, 'save shared:s below side:left+side:right', 'save leaf:1 below shared:s']);
    expect(result.objects.map((o) => o.key)).toEqual(['side:left', 'side:right', 'shared:s', 'leaf:1']);
    expect(ImageReader.open(join(dir, 'img')).manifest.objects.find((o) => o.key === 'shared:s')!.parents).toEqual(['side:left', 'side:right']);
  });

  it('rolls back everything already restored, in reverse order, and surfaces the original error', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    await setUp(log).resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: sleeper.pid }, imageDir: join(dir, 'img'), policy: new Policy() });
    log.length = 0;
    const failing = setUp(log, 'leaf');
    await expect(failing.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} })).rejects.toThrowError('cannot restore leaf:1');
    expect(log).toEqual(['restore side:left', 'restore side:right', 'restore shared:s', 'rollback shared:s', 'rollback side:right', 'rollback side:left']);
  });

  it('changes nothing when a preflight check fails', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    await setUp(log).resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: sleeper.pid }, imageDir: join(dir, 'img'), policy: new Policy() });
    log.length = 0;
    const container = setUp(log);
    const leaf = container.resolve(PluginRegistry).get('leaf').plugin;
    (leaf as { preflight?: () => void }).preflight = () => {
      throw new Error('leaf id 1 is taken');
    };
    await expect(container.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} })).rejects.toThrowError('leaf id 1 is taken');
    expect(log).toEqual([]);
    // Not even the pin directory it would have made.
    await expect(container.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: { pinDir: join(dir, 'pins') } })).rejects.toThrowError('leaf id 1 is taken');
    expect(readdirSync(dir)).toEqual(['img']);
  });

  it('writes no image when a save fails', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const container = setUp([]);
    pluginOf(container, 'leaf').save = () => {
      throw new Error('unsupported leaf');
    };
    await expect(container.resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: sleeper.pid }, imageDir: join(dir, 'img'), policy: new Policy() })).rejects.toThrowError('unsupported leaf');
    expect(readdirSync(dir)).toEqual([]);
  });
});

describe('engine, policy and plugin faults', () => {
  const target = () => ({ kind: 'process' as const, pid: sleeper.pid });

  it('lists excluded objects in the manifest with the deciding rule, but saves no record for them', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    const container = setUp(log);
    const policy = new Policy('include', 'default', [{ rule: { type: 'side', match: { n: 'right' }, decision: 'exclude' }, source: 'test' }]);
    // Give the side objects an attribute to match on.
    const side = pluginOf(container, 'side');
    side.collect = () => ['left', 'right'].map((id) => ({ id, handle: id, attributes: { n: id } }));
    await container.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy });
    expect(log).not.toContain(`save side:right below target:process:${sleeper.pid}`);
    const { manifest } = ImageReader.open(join(dir, 'img'));
    const right = manifest.objects.find((o) => o.key === 'side:right')!;
    expect(right.policy).toEqual({ decision: 'exclude', rule: 'object side n=right', source: 'test' });
    expect(right.record).toBeUndefined();
    expect(Object.keys(manifest.files).sort()).toEqual(['records/leaf/1.json', 'records/shared/s.json', 'records/side/left.json']);
    expect(manifest.plugins.map((p) => p.type)).toEqual(['side', 'shared', 'leaf']);
  });

  it('a dry run decides without writing anything', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    const { objects, warnings } = await setUp(log).resolve(CheckpointEngine).plan(target(), new Policy('exclude', 'flag --only'));
    expect(warnings).toEqual([]);
    expect(objects.map((o) => [o.key, o.policy.decision, o.policy.source])).toEqual([
      ['side:left', 'exclude', 'flag --only'],
      ['side:right', 'exclude', 'flag --only'],
      ['shared:s', 'exclude', 'flag --only'],
      ['leaf:1', 'exclude', 'flag --only'],
    ]);
    expect(log).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a record that fails the plugin schema, naming the plugin and object, and writes no image', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const container = setUp([]);
    const leaf = pluginOf(container, 'leaf');
    leaf.recordSchema = z.strictObject({ size: z.number() });
    leaf.save = () => ({ size: 'big' });
    const err = await container.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toMatch(/plugin leaf-pkg produced an invalid record for leaf:1:\n {2}at "size": found "big"; expected number/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('lets the target go before it checks and writes the records; with --kill, kills only once the image is committed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    const container = setUp(log);
    const side = pluginOf(container, 'side');
    side.freeze = (node) => void log.push(`freeze ${node.key}`);
    side.thaw = (node, ctx) => void log.push(`${ctx.kill ? 'kill' : 'thaw'} ${node.key}`);
    const leaf = pluginOf(container, 'leaf');
    leaf.recordSchema = z.strictObject({ size: z.number() }).refine(() => {
      log.push('check leaf:1');
      return true;
    });
    leaf.save = () => ({ size: 1 });
    const engine = container.resolve(CheckpointEngine);
    const steps = () => log.filter((l) => /^(thaw|kill|check)/.test(l)).splice(0);
    await engine.checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() });
    expect(steps()).toEqual(['thaw side:right', 'thaw side:left', 'check leaf:1']);
    log.length = 0;
    await engine.checkpoint({ target: target(), imageDir: join(dir, 'killed'), policy: new Policy(), kill: true });
    expect(steps()).toEqual(['check leaf:1', 'kill side:right', 'kill side:left']);

    log.length = 0;
    leaf.save = () => ({ size: 'big' });
    const err = await engine.checkpoint({ target: target(), imageDir: join(dir, 'bad'), policy: new Policy(), kill: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect(log.filter((l) => /^(thaw|kill)/.test(l))).toEqual(['thaw side:right', 'thaw side:left']);
    expect(readdirSync(dir).sort()).toEqual(['img', 'killed']);
  });

  it('releases every collected handle, duplicates included, whether or not the checkpoint succeeds', async () => {
    for (const fail of [false, true]) {
      dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
      const released: string[] = [];
      const container = setUp([]);
      const shared = pluginOf(container, 'shared');
      shared.collect = (parent) => [{ id: 's', handle: 's', release: () => released.push(`s from ${parent.key}`) }];
      if (fail) {
        shared.save = () => {
          throw new Error('no');
        };
      }
      const run = container.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() });
      await (fail ? expect(run).rejects.toThrowError('no') : run);
      expect(released.sort()).toEqual(['s from side:left', 's from side:right']);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('warns of a selector that matches no collected object; with strict, fails before saving and lets the target go', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    const container = setUp(log);
    const side = pluginOf(container, 'side');
    side.collect = () => ['left', 'right'].map((id) => ({ id, handle: id, attributes: { n: id } }));
    side.thaw = () => void log.push('thaw');
    side.freeze = () => void log.push('freeze');
    const policy = new Policy('include', 'default', [
      { rule: { type: 'side', match: { n: 'left' }, decision: 'exclude' }, source: 'flag --exclude' },
      { rule: { type: 'side', match: { n: 'middle' }, decision: 'exclude' }, source: 'flag --exclude' },
      { rule: { type: 'leaf', decision: 'exclude' }, source: 'flag --exclude' },
    ]);
    const engine = container.resolve(CheckpointEngine);
    const unmatched = 'side:n=middle (flag --exclude) matches no collected object, so it has no effect';
    expect((await engine.plan(target(), policy)).warnings).toEqual([unmatched]);
    await expect(engine.plan(target(), policy, true)).rejects.toThrowError(`--strict: ${unmatched}`);

    log.length = 0;
    const err = await engine.checkpoint({ target: target(), imageDir: join(dir, 'img'), policy, strict: true }).catch((e: unknown) => e);
    expect((err as CrError).exitCode).toBe(ExitCode.Usage);
    expect(log).toEqual(['freeze', 'freeze', 'thaw', 'thaw']);
    expect(readdirSync(dir)).toEqual([]);
    const result = await engine.checkpoint({ target: target(), imageDir: join(dir, 'img'), policy });
    expect(result.warnings).toEqual([unmatched]);
  });

  it('refuses collected attributes that are not of the type the plugin declared', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const container = setUp([]);
    const leaf = pluginOf(container, 'leaf');
    leaf.selectableBy = { key: 'key', fd: 'uint' };
    leaf.collect = () => [{ id: '1', handle: 1, attributes: { key: -862034964, fd: 3 } }];
    await expect(container.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() })).rejects.toThrowError(
      'plugin leaf-pkg (type leaf) collected leaf:1 with key -862034964 (IPC key, e.g. 0x0000abcd), not as it declares in selectableBy',
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a collected object without an id, naming the plugin', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const container = setUp([]);
    // What a plain-JavaScript plugin could return.
    pluginOf(container, 'leaf').collect = () => [{ id: 1, handle: 1 }] as unknown as CollectedObject[];
    await expect(container.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() })).rejects.toThrowError(
      /plugin leaf-pkg \(type leaf\) collected an object without a string id below shared:s/,
    );
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses a target process that does not exist before anything else', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    const err = await setUp(log).resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: 999_999_999 }, imageDir: join(dir, 'img'), policy: new Policy() }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TargetError);
    expect((err as Error).message).toContain('999999999');
    expect(log).toEqual([]);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses an image whose records need a newer plugin, or a plugin that is not installed', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const newer = setUp([]);
    (newer.resolve(PluginRegistry).get('leaf').plugin as { version: number }).version = 2;
    await newer.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() });

    const log: string[] = [];
    await expect(setUp(log).resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} })).rejects.toThrowError(
      /holds leaf records of version 2; the installed leaf-pkg reads version 1 and older: upgrade it/,
    );

    const container = createCrContainer();
    const registry = container.resolve(PluginRegistry);
    registry.register(fakePlugin('side', { restore: (_r, ctx) => void log.push(`restore ${ctx.key}`) }), 'side-pkg');
    await expect(container.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} })).rejects.toThrowError(
      /the image holds shared records, saved by shared-pkg, but no installed plugin handles "shared"; install shared-pkg/,
    );
    expect(log).toEqual([]);
  });

  it('reports a rollback that fails, together with the original error, and still undoes the rest', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    await setUp(log).resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() });
    log.length = 0;
    const container = setUp(log, 'leaf');
    const shared = pluginOf(container, 'shared');
    shared.rollback = () => {
      throw new Error('shared:s is stuck');
    };
    const err = await container.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} }).catch((e: unknown) => e);
    expect((err as Error).message).toBe('cannot restore leaf:1\nrollback was incomplete:\n  shared:s: shared:s is stuck');
    expect((err as Error).cause).toBeInstanceOf(Error);
    expect(log).toEqual(['restore side:left', 'restore side:right', 'restore shared:s', 'rollback side:right', 'rollback side:left']);
  });

  it('gives each restore the values of what was restored before it', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    await setUp([]).resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() });
    const container = setUp([]);
    const seen: unknown[] = [];
    pluginOf(container, 'shared').restore = (_r, ctx) => {
      seen.push(ctx.parents, ctx.parents.map((p) => ctx.restored(p)));
      return 'S';
    };
    const { restored } = await container.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} });
    expect(seen).toEqual([['side:left', 'side:right'], ['side:left', 'side:right']]);
    expect(restored.map((r) => r.key)).toEqual(['side:left', 'side:right', 'shared:s', 'leaf:1']);
  });
});

describe('engine: objects that change while frozen, that need each other, that several parents hold', () => {
  const target = () => ({ kind: 'process' as const, pid: sleeper.pid });

  it('collects and freezes again when a freeze finds the collected objects changed, letting go of what it froze', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    const container = setUp(log);
    const side = pluginOf(container, 'side');
    let tries = 0;
    side.collect = () => {
      tries++;
      return ['left', 'right'].map((id) => ({ id, handle: id }));
    };
    side.freeze = (node) => {
      log.push(`freeze ${node.key}`);
      if (node.id === 'right' && tries < 3) throw new CollectAgainError(`right forked on try ${tries}`);
    };
    side.thaw = (node) => void log.push(`thaw ${node.key}`);
    await container.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() });
    expect(tries).toBe(3);
    expect(log.filter((l) => /^(freeze|thaw)/.test(l))).toEqual([
      ...['freeze side:left', 'freeze side:right', 'thaw side:left'],
      ...['freeze side:left', 'freeze side:right', 'thaw side:left'],
      ...['freeze side:left', 'freeze side:right', 'thaw side:right', 'thaw side:left'],
    ]);
  });

  it('gives up with a TargetError naming the last change when the objects keep changing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const container = setUp([]);
    pluginOf(container, 'side').freeze = () => {
      throw new CollectAgainError('PID 7 made child 8 meanwhile');
    };
    const run = container.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() });
    await expect(run).rejects.toThrowError(TargetError);
    await expect(run).rejects.toThrowError(/kept changing while cr froze it \(10 tries; the last time: PID 7 made child 8 meanwhile\)/);
    expect(readdirSync(dir)).toEqual([]);
  });

  it('refuses, before saving, an object whose required object the policy leaves out, naming both and the rule', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const container = setUp([]);
    pluginOf(container, 'side').collect = () =>
      ['left', 'right'].map((id) => ({ id, handle: id, attributes: { n: id }, requires: [{ key: `side:${id === 'left' ? 'right' : 'left'}`, why: 'is its twin' }] }));
    const policy = new Policy('include', 'default', [{ rule: { type: 'side', match: { n: 'right' }, decision: 'exclude' }, source: 'flag --exclude' }]);
    const engine = container.resolve(CheckpointEngine);
    await expect(engine.plan(target(), policy)).rejects.toThrowError('side:right is left out (exclude by object side n=right), but side:left is saved and is its twin');
    const run = engine.checkpoint({ target: target(), imageDir: join(dir, 'img'), policy });
    await expect(run).rejects.toThrowError(UnsupportedError);
    expect(readdirSync(dir)).toEqual([]);
    // Both left out: nothing is missing.
    const none = new Policy('include', 'default', [{ rule: { type: 'side', decision: 'exclude' }, source: 'flag --exclude' }]);
    expect((await engine.plan(target(), none)).objects.filter((o) => o.type === 'side').map((o) => o.policy.decision)).toEqual(['exclude', 'exclude']);
  });

  it('an object found again below another parent claims what it claims there too', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const container = setUp([]);
    pluginOf(container, 'shared').collect = (parent) => [{ id: 's', handle: 's', claims: [`fd:${parent.id}:1`] }];
    pluginOf(container, 'leaf').collectsFrom = ['side'];
    pluginOf(container, 'leaf').collect = (parent) => [{ id: parent.id, handle: parent.id, defers: { object: `fd:${parent.id}:1`, unsupported: 'nobody saves it' } }];
    const { objects } = await container.resolve(CheckpointEngine).plan(target(), new Policy());
    expect(objects.filter((o) => o.type === 'leaf').map((o) => [o.key, o.policy.rule])).toEqual([
      ['leaf:left', 'claim of shared:s'],
      ['leaf:right', 'claim of shared:s'],
    ]);
  });
});

describe('restore refuses an image that does not hang together, before anything is restored', () => {
  const target = () => ({ kind: 'process' as const, pid: sleeper.pid });
  const checkpoint = (container = setUp([])) =>
    container.resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy() });
  const failure = (container: ReturnType<typeof setUp>) => container.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} }).catch((e: unknown) => e);

  it('refuses an image with no saved object, which would restore nothing', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    await setUp([]).resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy: new Policy('exclude') });
    const log: string[] = [];
    const err = await failure(setUp(log));
    expect(err).toBeInstanceOf(ImageError);
    expect((err as Error).message).toBe(`${join(dir, 'img')} holds nothing to restore: every object it lists was left out at checkpoint (cr inspect ${join(dir, 'img')} shows the decisions)`);
    expect(log).toEqual([]);
  });

  it("asks each record's plugin whether it agrees with the image, and names every inconsistent record in one line", async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const saving = setUp([]);
    const shared = pluginOf(saving, 'shared');
    shared.save = async (_node, ctx) => {
      await ctx.writeBlob('data', new Uint8Array(100));
      return { bytes: 120 };
    };
    pluginOf(saving, 'shared').recordSchema = z.strictObject({ bytes: z.number() });
    await checkpoint(saving);

    const log: string[] = [];
    const container = setUp(log);
    const registry = container.resolve(PluginRegistry);
    pluginOf(container, 'shared').recordSchema = z.strictObject({ bytes: z.number() });
    const seen: unknown[] = [];
    registry.get('shared').plugin.checkRecord = (record, ctx) => {
      seen.push(ctx.key, ctx.id, ctx.parents, ctx.blobSizes, ctx.object('side:left')?.saved, ctx.object('nothing'), ctx.records('side').map((r) => r.key));
      const { bytes } = record as { bytes: number };
      return bytes === ctx.blobSizes.data ? [] : [`it says ${bytes} bytes, its blob holds ${ctx.blobSizes.data}`];
    };
    registry.get('leaf').plugin.checkRecord = () => ['one', 'two', 'three', 'four', 'five'];
    const err = await failure(container);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as ImageError).exitCode).toBe(4);
    expect((err as Error).message).toBe(
      `record shared:s in ${join(dir, 'img', 'records/shared/s.json')} does not agree with the image: it says 120 bytes, its blob holds 100 ` +
        `(and 1 more inconsistent record(s): cr inspect ${join(dir, 'img')} lists them)`,
    );
    expect(seen).toEqual(['shared:s', 's', ['side:left', 'side:right'], { data: 100 }, true, undefined, ['side:left', 'side:right']]);
    expect(log).toEqual([]);

    registry.get('shared').plugin.checkRecord = undefined;
    expect(((await failure(container)) as Error).message).toBe(
      `record leaf:1 in ${join(dir, 'img', 'records/leaf/1.json')} does not agree with the image: one; two; three; 2 more`,
    );
  });

  it('refuses a record below a parent of a type its plugin does not collect from', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    await checkpoint();
    const log: string[] = [];
    const container = setUp(log);
    pluginOf(container, 'leaf').collectsFrom = ['side'];
    expect(((await failure(container)) as Error).message).toMatch(
      /^record leaf:1 in .* does not agree with the image: its parent shared:s is of type shared, but objects of type leaf are found below side$/,
    );
    expect(log).toEqual([]);
  });
});
