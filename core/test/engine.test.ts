import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CheckpointEngine, ImageReader, Policy, PluginRegistry, RestoreEngine, TARGET_PROCESS, createCrContainer, type ResourceNode } from '@cr/core';
import { afterEach, describe, expect, it } from 'vitest';
import { fakePlugin } from './fake-plugin.js';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

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
    const result = await container.resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: process.pid }, imageDir: join(dir, 'img'), policy: new Policy() });
    expect(log).toEqual(['save side:left below target:process:' + process.pid, 'save side:right below target:process:' + process.pid, 'save shared:s below side:left+side:right', 'save leaf:1 below shared:s']);
    expect(result.objects.map((o) => o.key)).toEqual(['side:left', 'side:right', 'shared:s', 'leaf:1']);
    expect(ImageReader.open(join(dir, 'img')).manifest.objects.find((o) => o.key === 'shared:s')!.parents).toEqual(['side:left', 'side:right']);
  });

  it('rolls back everything already restored, in reverse order, and surfaces the original error', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    await setUp(log).resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: process.pid }, imageDir: join(dir, 'img'), policy: new Policy() });
    log.length = 0;
    const failing = setUp(log, 'leaf');
    await expect(failing.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} })).rejects.toThrowError('cannot restore leaf:1');
    expect(log).toEqual(['restore side:left', 'restore side:right', 'restore shared:s', 'rollback shared:s', 'rollback side:right', 'rollback side:left']);
  });

  it('changes nothing when a preflight check fails', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const log: string[] = [];
    await setUp(log).resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: process.pid }, imageDir: join(dir, 'img'), policy: new Policy() });
    log.length = 0;
    const container = setUp(log);
    const leaf = container.resolve(PluginRegistry).get('leaf').plugin;
    (leaf as { preflight?: () => void }).preflight = () => {
      throw new Error('leaf id 1 is taken');
    };
    await expect(container.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} })).rejects.toThrowError('leaf id 1 is taken');
    expect(log).toEqual([]);
  });

  it('writes no image when a save fails', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-engine-'));
    const container = setUp([]);
    (container.resolve(PluginRegistry).get('leaf').plugin as { save: () => never }).save = () => {
      throw new Error('unsupported leaf');
    };
    await expect(container.resolve(CheckpointEngine).checkpoint({ target: { kind: 'process', pid: process.pid }, imageDir: join(dir, 'img'), policy: new Policy() })).rejects.toThrowError('unsupported leaf');
    expect(readdirSync(dir)).toEqual([]);
  });
});
