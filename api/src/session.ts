import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginError } from '@cr/core';
import {
  LOGGER,
  PROGRESS,
  PluginRegistry,
  assertTrustedFile,
  createCrContainer,
  loadPlugins,
  registerPluginModule,
  resolveConfig,
  typeSelectionRules,
  typedRules,
  type ConfigLayer,
  type DependencyContainer,
  type Logger,
  type ProgressReporter,
  type ResolvedConfig,
  type Selections,
} from '@cr/core/engine';
import type { PolicyRule } from '@cr/schemas';
import { BUILTIN_PLUGIN_MODULES } from './builtin-plugins.js';

/** cr's own install: the built-in plugins are resolved from here only, never from a node_modules near the working directory. */
export const OWN_INSTALL = dirname(dirname(fileURLToPath(import.meta.url)));

/** One cr run's configuration and plugins: what the CLI's commands and the library's functions work with. */
export interface Session {
  container: DependencyContainer;
  registry: PluginRegistry;
  resolved: ResolvedConfig;
}

export interface SessionRequest {
  /** cr's defaults, a config file, its profile, flags or options: later layers win. */
  layers: readonly ConfigLayer[];
  /** Where the plugins the config names are resolved from, in order, before cr's own install. */
  searchFrom: readonly string[];
  /** Load cr's built-in plugins (the default). */
  builtinPlugins?: boolean;
  /** Where the engines and plugins log (pino's logger fits); silent if absent. */
  logger?: Logger;
  /** Where the engines report the progress of long work; nowhere if absent. */
  progress?: ProgressReporter;
}

/**
 * Resolves the config layers, loads the built-in plugins and those the config names (which must
 * be files cr may trust, as a config file must), checks every type and selector the layers name
 * against the installed plugins, and gives each plugin its `pluginOptions`, checked by its schema.
 */
export async function openSession(request: SessionRequest): Promise<Session> {
  const resolved = resolveConfig(request.layers);
  const container = createCrContainer();
  if (request.logger) container.register(LOGGER, { useValue: request.logger });
  if (request.progress) container.register(PROGRESS, { useValue: request.progress });
  const registry = container.resolve(PluginRegistry);
  if (request.builtinPlugins !== false) {
    for (const [spec, load] of Object.entries(BUILTIN_PLUGIN_MODULES)) await registerPluginModule(spec, `cr's own install`, load, container, registry);
  }
  await loadPlugins(resolved.config.plugins ?? [], [...request.searchFrom, OWN_INSTALL], container, registry, (path, spec) =>
    assertTrustedFile(path, `plugin ${spec}`, PluginError),
  );
  for (const layer of request.layers) {
    assertSelections(registry, layer.source, layer.config.checkpoint, layer.config.policy?.rules);
    for (const [name, p] of Object.entries(layer.config.profiles ?? {})) {
      assertSelections(registry, `${layer.source}, profile ${name}`, p.checkpoint, p.policy?.rules);
    }
  }
  const sourceOf = (type: string) => {
    const path = `pluginOptions.${type}`;
    return Object.entries(resolved.sources).find(([key]) => key === path || key.startsWith(`${path}.`))?.[1] ?? 'default';
  };
  registry.setPluginOptions(resolved.config.pluginOptions ?? {}, sourceOf);
  for (const { plugin, source } of registry.all()) {
    request.logger?.trace({ type: plugin.type, version: plugin.version, package: source }, `plugin ${plugin.type} (record version ${plugin.version}) from ${source}`);
  }
  return { container, registry, resolved };
}

/**
 * Every type a layer, profile or advice names must be installed (or be a group of installed
 * types), and every selector must name attributes its objects can be selected by, with values of
 * their types: a typo would otherwise select nothing.
 */
export function assertSelections(registry: PluginRegistry, source: string, selections: Selections | undefined, rules: readonly PolicyRule[] | undefined): void {
  const sources = { only: source, include: source, exclude: source, external: source };
  typedRules([...(rules ?? []).map((rule) => ({ rule, source })), ...typeSelectionRules(selections ?? {}, sources).rules], registry);
}
