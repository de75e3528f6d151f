import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PluginError } from '@cr/core';
import { PluginRegistry, createCrContainer, loadPlugins } from '@cr/core/engine';
import { afterEach, describe, expect, it } from 'vitest';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

/** A plugin module with no imports at all: the contract is structural. */
const PLUGIN = (type: string) => `
export default class {
  apiVersion = 1;
  type = ${JSON.stringify(type)};
  version = 1;
  description = 'test';
  collectsFrom = ['target:process'];
  recordSchema = { safeParse: (v) => ({ success: true, data: v }) };
  collect() { return []; }
  save() { return {}; }
  restore() {}
}
`;

async function load(files: Record<string, string>, specs: string[]): Promise<PluginRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'cr-loader-'));
  dirs.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  const container = createCrContainer();
  const registry = container.resolve(PluginRegistry);
  await loadPlugins(specs, [join(dir, 'elsewhere'), dir], container, registry);
  return registry;
}

describe('loadPlugins', () => {
  it('loads default-exported classes (one or an array) by relative path from a search directory', async () => {
    const registry = await load(
      { 'one.mjs': PLUGIN('one'), 'two.mjs': `${PLUGIN('two').replace('export default class', 'class Two')}\n${PLUGIN('three').replace('export default class', 'class Three')}\nexport default [Two, Three];` },
      ['./one.mjs', './two.mjs'],
    );
    expect(registry.all().map((r) => [r.plugin.type, r.source])).toEqual([
      ['one', './one.mjs'],
      ['three', './two.mjs'],
      ['two', './two.mjs'],
    ]);
  });

  it('names a plugin that cannot be found, with where it looked', async () => {
    const err = await load({}, ['cr-plugin-nowhere']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toMatch(/plugin cr-plugin-nowhere not found \(looked from .*elsewhere, .*cr-loader-/);
  });

  it('names a module without a plugin class as its default export', async () => {
    await expect(load({ 'bad.mjs': 'export default { type: "x" };' }, ['./bad.mjs'])).rejects.toThrowError(/plugin \.\/bad\.mjs \(.*bad\.mjs\) must export a plugin class/);
    await expect(load({ 'empty.mjs': 'export default [];' }, ['./empty.mjs'])).rejects.toThrowError(/must export a plugin class/);
  });

  it('names a module that fails to load, and a class that fails to construct', async () => {
    await expect(load({ 'broken.mjs': 'throw new Error("boom at import");' }, ['./broken.mjs'])).rejects.toThrowError(/plugin \.\/broken\.mjs \(.*\) failed to load: boom at import/);
    await expect(load({ 'ctor.mjs': 'export default class Ctor { constructor() { throw new Error("no kernel"); } }' }, ['./ctor.mjs'])).rejects.toThrowError(
      /plugin \.\/ctor\.mjs: cannot construct Ctor: no kernel/,
    );
  });

  it('checks the shape of what it loaded', async () => {
    await expect(load({ 'old.mjs': PLUGIN('old').replace('apiVersion = 1', 'apiVersion = 0') }, ['./old.mjs'])).rejects.toThrowError(
      /plugin from \.\/old\.mjs is not a valid cr plugin: it implements plugin API version 0/,
    );
  });
});
