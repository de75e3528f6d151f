import 'reflect-metadata';
import { container, type DependencyContainer } from 'tsyringe';
import { CheckpointEngine } from './engine/checkpoint-engine.js';
import { RestoreEngine } from './engine/restore-engine.js';
import { Kernel } from './kernel/kernel.js';
import { LOGGER, silentLogger } from './log/logger.js';
import { PROGRESS, noProgress } from './log/progress.js';
import { PluginRegistry } from './plugin/registry.js';

/**
 * A fresh container for one cr run: the kernel layer, the plugin registry, the engines, and the
 * logger and progress reporter the engines use (silent until the caller registers its own under
 * LOGGER and PROGRESS, before it resolves an engine).
 * Plugins are resolved from it (see loadPlugins), so they receive the same Kernel the engines use.
 */
export function createCrContainer(): DependencyContainer {
  const c = container.createChildContainer();
  c.registerInstance(Kernel, new Kernel());
  c.registerInstance(PluginRegistry, new PluginRegistry());
  c.register(LOGGER, { useValue: silentLogger });
  c.register(PROGRESS, { useValue: noProgress });
  c.registerSingleton(CheckpointEngine);
  c.registerSingleton(RestoreEngine);
  return c;
}
