import { createRequire } from 'node:module';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { DependencyContainer } from 'tsyringe';
import { PluginError } from '../errors.js';
import type { PluginClass, ResourcePlugin } from './contract.js';
import type { PluginRegistry } from './registry.js';

/**
 * Loads plugin packages by name or path and registers them. A package's default export is a
 * plugin class or an array of them; the class is built by the container so its `@inject`ed
 * services are filled in. Names are resolved from each directory of `searchFrom` in turn (the
 * config file's directory first, then cr's own install). `check` sees each resolved module file
 * before it is imported, and may refuse it by throwing.
 */
export async function loadPlugins(
  specs: readonly string[],
  searchFrom: readonly string[],
  container: DependencyContainer,
  registry: PluginRegistry,
  check?: (path: string, spec: string) => void,
): Promise<void> {
  for (const spec of specs) {
    const path = resolvePlugin(spec, searchFrom);
    check?.(path, spec);
    await registerPluginModule(spec, path, () => import(pathToFileURL(path).href), container, registry);
  }
}

/**
 * Registers the plugin classes of one plugin module, which `load` imports: what loadPlugins does
 * once it has found the module. Also for a caller that imports a plugin package itself (cr's
 * built-in plugins, which a bundle holds); `where` names the module in errors.
 */
export async function registerPluginModule(spec: string, where: string, load: () => Promise<unknown>, container: DependencyContainer, registry: PluginRegistry): Promise<void> {
  let mod: { default?: unknown };
  try {
    mod = (await load()) as { default?: unknown };
  } catch (err) {
    throw new PluginError(`plugin ${spec} (${where}) failed to load: ${(err as Error).message}`, { cause: err });
  }
  const exported = mod.default;
  const classes = Array.isArray(exported) ? exported : [exported];
  if (classes.length === 0 || classes.some((c) => typeof c !== 'function')) {
    throw new PluginError(`plugin ${spec} (${where}) must export a plugin class, or an array of them, as its default export; see docs/plugins.md`);
  }
  for (const cls of classes as PluginClass[]) {
    let plugin: ResourcePlugin;
    try {
      plugin = container.resolve(cls);
    } catch (err) {
      throw new PluginError(`plugin ${spec}: cannot construct ${cls.name}: ${(err as Error).message}`, { cause: err });
    }
    registry.register(plugin, spec);
  }
}

function resolvePlugin(spec: string, searchFrom: readonly string[]): string {
  for (const dir of searchFrom) {
    try {
      return createRequire(join(dir, 'noop.js')).resolve(spec);
    } catch {
      continue;
    }
  }
  throw new PluginError(`plugin ${spec} not found (looked from ${searchFrom.join(', ')}); install it with npm or fix the name in the config's plugins`);
}
