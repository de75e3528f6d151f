import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  CrError,
  DEFAULT_CONFIG,
  ExitCode,
  PluginRegistry,
  createCrContainer,
  loadConfigFile,
  loadPlugins,
  describeZodError,
  resolveConfig,
  type ConfigLayer,
  type DependencyContainer,
  type ResolvedConfig,
} from '@cr/core';
import { configSchema, type CrConfig } from '@cr/schemas';
import { Command, Flags } from '@oclif/core';
import { BUILTIN_PLUGINS } from './builtin-plugins.js';

/** Config values set by flags, keyed by the flag that set them (shown by `cr config`). */
export type CrConfigFlags = Record<string, CrConfig>;

const cliDir = dirname(dirname(fileURLToPath(import.meta.url)));

/**
 * What every cr command shares: `--config`, the layered config (defaults → file → flags), a
 * container with the plugins loaded, and errors turned into one clear message and an exit code.
 */
export abstract class CrCommand extends Command {
  static override baseFlags = {
    config: Flags.file({ description: 'Config file to use instead of searching for .crrc and friends.', exists: true, helpGroup: 'GLOBAL' }),
  };

  protected container!: DependencyContainer;
  protected resolved!: ResolvedConfig;
  protected configFile: string | undefined;

  /** Loads config and plugins; `flagLayer` holds the values the command's own flags set. */
  protected async setUp(configPath: string | undefined, flagLayer: CrConfigFlags = {}): Promise<void> {
    const file = await loadConfigFile({ cwd: process.cwd(), file: configPath });
    this.configFile = file.filepath;
    const layers: ConfigLayer[] = [{ source: 'default', config: DEFAULT_CONFIG }];
    if (file.filepath) layers.push({ source: `file ${file.filepath}`, config: file.config });
    for (const [flag, config] of Object.entries(flagLayer)) layers.push({ source: `flag ${flag}`, config });
    this.resolved = resolveConfig(layers);
    this.container = createCrContainer();
    const searchFrom = [...(file.filepath ? [dirname(file.filepath)] : []), process.cwd(), cliDir];
    await loadPlugins([...BUILTIN_PLUGINS, ...(this.resolved.config.plugins ?? [])], searchFrom, this.container, this.registry);
    for (const layer of layers) {
      const { only = [], include = [], exclude = [] } = layer.config.checkpoint ?? {};
      const rules = (layer.config.policy?.rules ?? []).map((r) => r.type);
      for (const selection of [...only, ...include, ...exclude, ...rules]) this.assertKnownType(layer.source, selection.split(':')[0]!);
    }
  }

  protected get registry(): PluginRegistry {
    return this.container.resolve(PluginRegistry);
  }

  /** A type named by a flag or a config file must be installed: a typo would otherwise select nothing. */
  private assertKnownType(source: string, type: string): void {
    if (!this.registry.has(type)) {
      const exitCode = source.startsWith('file ') ? ExitCode.Config : ExitCode.Usage;
      throw new CrError(`${source}: unknown resource type "${type}"; installed types: ${this.registry.orderedTypes().join(', ')} (see cr plugins)`, exitCode);
    }
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof CrError) {
      if (this.jsonEnabled()) {
        this.logJson({ error: { name: err.name, message: err.message, exitCode: err.exitCode } });
        this.exit(err.exitCode);
      }
      this.logToStderr(`cr: ${err.message}`);
      this.exit(err.exitCode);
    }
    return super.catch(err);
  }
}

/**
 * The config layers that `--only`, `--include` and `--exclude` stand for. Each takes a
 * comma-separated list and may be repeated; the layers are validated like a config file.
 */
export function typeSelectionFlags(flags: { only?: string[]; include?: string[]; exclude?: string[] }): CrConfigFlags {
  const layers: CrConfigFlags = {};
  for (const name of ['only', 'include', 'exclude'] as const) {
    const values = flags[name];
    if (values === undefined) continue;
    const list = values.flatMap((v) => v.split(',')).map((t) => t.trim()).filter(Boolean);
    const parsed = configSchema.safeParse({ checkpoint: { [name]: list } });
    if (!parsed.success) throw new CrError(`--${name}: ${describeZodError(parsed.error, { checkpoint: { [name]: list } }).join('; ')}`, ExitCode.Usage);
    layers[`--${name}`] = parsed.data;
  }
  return layers;
}

/** Flags of the commands that select what is saved. */
export const selectionFlags = {
  only: Flags.string({ multiple: true, description: 'Save only these resource types (comma-separated), e.g. uts-ns,ipc-ns.' }),
  include: Flags.string({
    multiple: true,
    description: 'Save these types or objects even where another rule excludes them: TYPE or TYPE:ATTR=VALUE, e.g. sysvipc-shm:key=0x1234.',
  }),
  exclude: Flags.string({ multiple: true, description: 'Leave these types or objects out: TYPE or TYPE:ATTR=VALUE, e.g. ipc-ns or sysvipc-msg:id=3.' }),
};
