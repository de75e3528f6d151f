import { PLUGIN_API_VERSION, TARGET_PROCESS, type ResourcePlugin } from '@cr/core';
import { PluginRegistry } from '@cr/core/engine';
import { z } from 'zod';

/** A plugin that does nothing unless a test overrides its parts. */
export function fakePlugin(type: string, over: Partial<ResourcePlugin> = {}): ResourcePlugin {
  return {
    apiVersion: PLUGIN_API_VERSION,
    type,
    version: 1,
    description: type,
    collectsFrom: [TARGET_PROCESS],
    recordSchema: z.object({}),
    collect: () => [],
    save: () => ({}),
    restore: () => undefined,
    ...over,
  };
}

/** The built-in types as far as policy sees them: their groups and selectable attributes. */
export function selectorRegistry(): PluginRegistry {
  const registry = new PluginRegistry();
  const sysv = { groups: ['sysvipc'] };
  registry.register(fakePlugin('tasks', { selectableBy: { pid: 'uint', comm: 'string', subtree: 'lineage' } }), 'test');
  registry.register(fakePlugin('files', { selectableBy: { pid: 'uint', fd: 'uint', path: 'string' } }), 'test');
  registry.register(fakePlugin('uts-ns', { namespaceKind: 'uts', selectableBy: { inode: 'uint' } }), 'test');
  registry.register(fakePlugin('ipc-ns', { namespaceKind: 'ipc', selectableBy: { inode: 'uint' } }), 'test');
  registry.register(fakePlugin('sysvipc-shm', { ...sysv, selectableBy: { id: 'uint', key: 'key', size: 'uint' } }), 'test');
  registry.register(fakePlugin('sysvipc-msg', { ...sysv, selectableBy: { id: 'uint', key: 'key' } }), 'test');
  registry.register(fakePlugin('sysvipc-sem', { ...sysv, selectableBy: { id: 'uint', key: 'key', nsems: 'uint' } }), 'test');
  return registry;
}
