import { PluginError, type ResourcePlugin } from '@cr/core';
import { PluginRegistry, orderTypes } from '@cr/core/engine';
import { fakePlugin } from './fake-plugin.js';
import { describe, expect, it } from 'vitest';

describe('type ordering', () => {
  it('puts every type after the types it needs', () => {
    const order = orderTypes([
      { type: 'sysvipc-shm', needs: ['ipc-ns'], declaredBy: 'a' },
      { type: 'tasks', needs: ['target:process', 'ipc-ns', 'uts-ns'], declaredBy: 'b' },
      { type: 'ipc-ns', needs: ['target:process'], declaredBy: 'c' },
      { type: 'uts-ns', needs: [], declaredBy: 'd' },
    ]);
    expect(order.indexOf('ipc-ns')).toBeLessThan(order.indexOf('sysvipc-shm'));
    expect(order.indexOf('ipc-ns')).toBeLessThan(order.indexOf('tasks'));
    expect(order.indexOf('uts-ns')).toBeLessThan(order.indexOf('tasks'));
  });

  it('names the cycle and the packages that declared it', () => {
    expect(() =>
      orderTypes([
        { type: 'a', needs: ['b'], declaredBy: 'pkg-a' },
        { type: 'b', needs: ['c'], declaredBy: 'pkg-b' },
        { type: 'c', needs: ['a'], declaredBy: 'pkg-c' },
      ]),
    ).toThrowError(/cycle: a → b → c → a \(declared by pkg-a, pkg-b, pkg-c\)/);
  });

  it('names an unknown dependency and who needs it', () => {
    expect(() => orderTypes([{ type: 'sysvipc-shm', needs: ['ipc-ns'], declaredBy: '@x/shm' }])).toThrowError(
      /plugin @x\/shm \(type sysvipc-shm\) needs type "ipc-ns", which no installed plugin provides/,
    );
  });
});

describe('plugin registry', () => {
  it('orders registered plugins by collectsFrom and dependsOn', () => {
    const registry = new PluginRegistry();
    registry.register(fakePlugin('child', { collectsFrom: ['parent'], dependsOn: ['other'] }), 'c');
    registry.register(fakePlugin('parent'), 'p');
    registry.register(fakePlugin('other'), 'o');
    const order = registry.orderedTypes();
    expect(order.indexOf('parent')).toBeLessThan(order.indexOf('child'));
    expect(order.indexOf('other')).toBeLessThan(order.indexOf('child'));
  });

  it('rejects a wrong API version, a duplicate type, a missing method and a bad type name', () => {
    const registry = new PluginRegistry();
    expect(() => registry.register(fakePlugin('x', { apiVersion: 99 }), 'old-pkg')).toThrowError(/old-pkg .* plugin API version 99, this cr loads versions 1 to 2; upgrade cr/);
    registry.register(fakePlugin('x'), 'first');
    expect(() => registry.register(fakePlugin('x'), 'second')).toThrowError(/type "x" is provided twice: by first and by second/);
    expect(() => registry.register({ ...fakePlugin('y'), save: undefined } as unknown as ResourcePlugin, 'p')).toThrowError(/no save\(\) method/);
    expect(() => registry.register(fakePlugin('Bad Name'), 'p')).toThrowError(PluginError);
  });
});

describe('plugin registry ordering errors', () => {
  it('reports a cycle between registered plugins, naming the types and their packages', () => {
    const registry = new PluginRegistry();
    registry.register(fakePlugin('alpha', { dependsOn: ['beta'] }), 'pkg-alpha');
    registry.register(fakePlugin('beta', { collectsFrom: ['alpha'] }), 'pkg-beta');
    const err = (() => {
      try {
        registry.orderedTypes();
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toMatch(/cycle: alpha → beta → alpha \(declared by pkg-alpha, pkg-beta\)/);
  });

  it('names the plugin that needs a type nobody provides', () => {
    const registry = new PluginRegistry();
    registry.register(fakePlugin('sysvipc-shm', { collectsFrom: ['ipc-ns'] }), '@x/cr-plugin-shm');
    expect(() => registry.orderedTypes()).toThrowError(/plugin @x\/cr-plugin-shm \(type sysvipc-shm\) needs type "ipc-ns"/);
  });

  it('gives the same order whatever order the plugins were registered in', () => {
    const plugins = [fakePlugin('c', { collectsFrom: ['a'] }), fakePlugin('b'), fakePlugin('a'), fakePlugin('d', { collectsFrom: ['b'], dependsOn: ['c'] })];
    const orders = [plugins, [...plugins].reverse()].map((list) => {
      const registry = new PluginRegistry();
      for (const p of list) registry.register(p, p.type);
      return registry.orderedTypes();
    });
    expect(orders[0]).toEqual(orders[1]);
    expect(orders[0]).toEqual(['a', 'b', 'c', 'd']);
  });

  it('treats target types as roots, and rejects a plugin with no parent or a bad version', () => {
    expect(orderTypes([{ type: 'x', needs: ['target:process', 'target:ipc-ns'], declaredBy: 'p' }])).toEqual(['x']);
    const registry = new PluginRegistry();
    expect(() => registry.register(fakePlugin('x', { collectsFrom: [] }), 'p')).toThrowError(/collectsFrom must name at least one parent type/);
    expect(() => registry.register(fakePlugin('x', { version: 0 }), 'p')).toThrowError(/version must be a positive integer/);
    expect(() => registry.register(fakePlugin('x', { recordSchema: {} as never }), 'p')).toThrowError(/recordSchema must be a zod schema/);
    expect(() => registry.get('x')).toThrowError(/no installed plugin handles type "x"/);
  });
});
