import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CrError, TARGET_PROCESS, TargetError, type ExternalReference } from '@cr/core';
import { CheckpointEngine, ImageReader, Policy, PluginRegistry, RestoreEngine, createCrContainer } from '@cr/core/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { fakePlugin } from './fake-plugin.js';
import { targetProcess } from './target-process.js';

const sleeper = targetProcess();

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const target = () => ({ kind: 'process' as const, pid: sleeper.pid });

/**
 * "proc" uses two of the three segments ("seg:1", "seg:2"; not "seg:3"), the way a process's
 * memory has SysV segments attached. `live` is what findExternal finds, by segment id.
 */
function setUp(log: string[], live: Record<string, number> = {}) {
  const container = createCrContainer();
  const registry = container.resolve(PluginRegistry);
  registry.register(
    fakePlugin('seg', {
      groups: ['segments'],
      collect: () => ['1', '2', '3'].map((id) => ({ id, handle: id, attributes: { id: Number(id), size: 4096 } })),
      findExternal: (ref: ExternalReference) => {
        log.push(`find ${ref.key}${ref.mapTo ? ` as ${JSON.stringify(ref.mapTo)}` : ''} used by ${ref.usedBy.join(',') || 'nobody'}`);
        const wanted = String(ref.mapTo?.id ?? ref.id);
        if (!(wanted in live)) throw new TargetError(`${ref.key} is missing`);
        return live[wanted];
      },
      restore: (_r, ctx) => {
        log.push(`restore ${ctx.key}`);
      },
    }),
    'seg-pkg',
  );
  registry.register(
    fakePlugin('proc', {
      collect: () => [{ id: 'p', handle: 'p', uses: ['seg:1', 'seg:2'] }],
      preflight: () => {
        log.push('preflight proc:p');
      },
      restore: (_r, ctx) => {
        log.push(`restore proc:p sees seg:1=${String(ctx.restored('seg:1'))} seg:2=${String(ctx.restored('seg:2'))}`);
      },
    }),
    'proc-pkg',
  );
  return container;
}

async function checkpoint(policy: Policy) {
  dir = mkdtempSync(join(tmpdir(), 'cr-extref-'));
  await setUp([]).resolve(CheckpointEngine).checkpoint({ target: target(), imageDir: join(dir, 'img'), policy });
  return new Map(ImageReader.open(join(dir, 'img')).manifest.objects.map((o) => [o.key, o]));
}

describe('external references at checkpoint', () => {
  it('an excluded object that a saved object uses turns external, and the manifest says who uses it', async () => {
    const objects = await checkpoint(new Policy('include', 'default', [{ rule: { type: 'segments', decision: 'exclude' }, source: 'flag --exclude' }]));
    expect(objects.get('seg:1')).toMatchObject({
      policy: { decision: 'external', rule: 'type segments: excluded, but used by proc:p', source: 'flag --exclude' },
      reference: { usedBy: ['proc:p'] },
      attributes: { id: 1, size: 4096 },
    });
    expect(objects.get('seg:1')!.record).toBeUndefined();
    // Nothing uses segment 3: it is simply left out.
    expect(objects.get('seg:3')!.policy.decision).toBe('exclude');
    expect(objects.get('seg:3')!.reference).toBeUndefined();
  });

  it('external by a rule is a reference even if nothing is known to use it; an included object is none', async () => {
    const objects = await checkpoint(
      new Policy('include', 'default', [
        { rule: { type: 'seg', decision: 'external' }, source: 'advice /a' },
        { rule: { type: 'seg', match: { id: 2 }, decision: 'include' }, source: 'flag --include' },
      ]),
    );
    expect(objects.get('seg:3')).toMatchObject({ policy: { decision: 'external', rule: 'type seg' }, reference: { usedBy: [] } });
    expect(objects.get('seg:1')).toMatchObject({ policy: { decision: 'external', rule: 'type seg; used by proc:p' }, reference: { usedBy: ['proc:p'] } });
    expect(objects.get('seg:2')!.reference).toBeUndefined();
    expect(objects.get('seg:2')!.record).toBeDefined();
  });

  it('what an object that is not saved uses is no reference', async () => {
    const objects = await checkpoint(
      new Policy('include', 'default', [
        { rule: { type: 'proc', decision: 'exclude' }, source: 'flag --exclude' },
        { rule: { type: 'seg', decision: 'exclude' }, source: 'flag --exclude' },
      ]),
    );
    expect([...objects.values()].filter((o) => o.reference)).toEqual([]);
  });
});

describe('external references at restore', () => {
  const excludeSegments = () => new Policy('include', 'default', [{ rule: { type: 'seg', decision: 'exclude' }, source: 'flag --exclude' }]);

  it('finds each before any preflight, and gives later objects what was found', async () => {
    await checkpoint(excludeSegments());
    const log: string[] = [];
    await setUp(log, { '1': 11, '2': 12 }).resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} });
    expect(log).toEqual(['find seg:1 used by proc:p', 'find seg:2 used by proc:p', 'preflight proc:p', 'restore proc:p sees seg:1=11 seg:2=12']);
  });

  it('names every missing one in one error and changes nothing', async () => {
    await checkpoint(excludeSegments());
    const log: string[] = [];
    const err = await setUp(log, {}).resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CrError);
    expect((err as CrError).exitCode).toBe(5);
    expect((err as Error).message).toBe(`cannot restore ${join(dir, 'img')}: it refers to objects it did not save, which must exist; nothing was changed:\n  seg:1 is missing\n  seg:2 is missing`);
    expect(log.filter((l) => !l.startsWith('find'))).toEqual([]);
  });

  it('--map-external hands the plugin the object to find instead; a selector matching no reference is a usage error', async () => {
    await checkpoint(excludeSegments());
    const log: string[] = [];
    const engine = setUp(log, { '2': 12, '7': 17 }).resolve(RestoreEngine);
    await engine.restore({ imageDir: join(dir, 'img'), options: {}, mapExternal: [{ text: 'seg:id=1=id=7', type: 'seg', from: { id: 1 }, to: { id: 7 } }] });
    expect(log).toContain('find seg:1 as {"id":7} used by proc:p');
    expect(log).toContain('restore proc:p sees seg:1=17 seg:2=12');

    const wrong = await engine.restore({ imageDir: join(dir, 'img'), options: {}, mapExternal: [{ text: 'seg:id=3=id=7', type: 'seg', from: { id: 3 }, to: { id: 7 } }] }).catch((e: unknown) => e);
    expect((wrong as CrError).exitCode).toBe(2);
    expect((wrong as Error).message).toBe(
      '--map-external seg:id=3=id=7: the image has no external reference of type seg with id=3; the image\'s external references: seg:1 (id=1,size=4096), seg:2 (id=2,size=4096)',
    );
  });

  it('a type whose plugin cannot look is not checked, but cannot be mapped either', async () => {
    await checkpoint(excludeSegments());
    const log: string[] = [];
    const container = setUp(log);
    delete (container.resolve(PluginRegistry).get('seg').plugin as { findExternal?: unknown }).findExternal;
    await container.resolve(RestoreEngine).restore({ imageDir: join(dir, 'img'), options: {} });
    expect(log).toContain('restore proc:p sees seg:1=undefined seg:2=undefined');
    const err = await container
      .resolve(RestoreEngine)
      .restore({ imageDir: join(dir, 'img'), options: {}, mapExternal: [{ text: 'seg:id=1=id=7', type: 'seg', from: { id: 1 }, to: { id: 7 } }] })
      .catch((e: unknown) => e);
    expect((err as Error).message).toContain('seg:1: seg-pkg cannot look for seg objects, so --map-external cannot apply to it');
  });
});

describe('groups', () => {
  it('a plugin may name groups; namespace types are in "namespaces"', () => {
    const registry = setUp([]).resolve(PluginRegistry);
    registry.register(fakePlugin('box-ns', { namespaceKind: 'uts', collectsFrom: [TARGET_PROCESS] }), 'box-pkg');
    expect(registry.groupsOf('seg')).toEqual(['segments']);
    expect(registry.groupsOf('box-ns')).toEqual(['namespaces']);
    expect(registry.groups()).toEqual(['namespaces', 'segments']);
    expect(registry.selects('segments') && registry.selects('seg') && !registry.selects('segment')).toBe(true);
    expect(() => registry.register(fakePlugin('odd', { groups: ['Not A Group'] }), 'odd-pkg')).toThrowError(/group "Not A Group" is not a name like "sysvipc"/);
  });
});
