import { ConfigError, PluginError } from '@cr/core';
import { PluginRegistry } from '@cr/core/engine';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { fakePlugin } from './fake-plugin.js';

const FILE = 'file /etc/cr/.crrc.json';

function registry(): PluginRegistry {
  const r = new PluginRegistry();
  r.register(fakePlugin('tasks'), '@cr/plugin-tasks');
  r.register(fakePlugin('limits', { optionsSchema: z.strictObject({ max: z.number().int().min(1).default(10), names: z.array(z.string()).optional() }) }), 'cr-plugin-limits');
  return r;
}

function refusal(given: Record<string, unknown>): string {
  try {
    registry().setPluginOptions(given, () => FILE);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('the options were accepted');
}

describe('pluginOptions, checked by each plugin\'s optionsSchema', () => {
  it('a plugin gets what its schema parsed, defaults filled in; a plugin without a schema gets nothing', () => {
    const r = registry();
    r.setPluginOptions({ limits: { names: ['a'] } }, () => FILE);
    expect(r.optionsOf('limits')).toEqual({ max: 10, names: ['a'] });
    expect(r.optionsOf('tasks')).toBeUndefined();
    const none = registry();
    none.setPluginOptions({}, () => FILE);
    expect(none.optionsOf('limits')).toEqual({ max: 10 });
  });

  it('a bad value is refused naming the plugin, where it came from and the key path', () => {
    expect(refusal({ limits: { max: 0 } })).toBe(
      `invalid options for plugin cr-plugin-limits (${FILE}):\n  at "pluginOptions.limits.max": found 0; Too small: expected number to be >=1`,
    );
    expect(refusal({ limits: { names: ['a', 3] } })).toMatch(/^ {2}at "pluginOptions\.limits\.names\[1\]": found 3; expected string/m);
    expect(refusal({ limits: { mxa: 3 } })).toMatch(/at "pluginOptions\.limits": found unknown key "mxa"/);
  });

  it('options for a type no plugin handles, or for a plugin that takes none, are refused', () => {
    expect(refusal({ limtis: {} })).toMatch(/^pluginOptions\.limtis \(file \/etc\/cr\/\.crrc\.json\): no installed plugin handles type "limtis"; installed types: tasks, limits$/);
    expect(refusal({ tasks: { x: 1 } })).toBe(`pluginOptions.tasks (${FILE}): plugin @cr/plugin-tasks takes no options; remove the key`);
  });

  it('an optionsSchema that is not a zod schema is refused when the plugin is registered', () => {
    expect(() => new PluginRegistry().register(fakePlugin('odd', { optionsSchema: {} as z.ZodType }), 'cr-plugin-odd')).toThrow(PluginError);
  });
});
