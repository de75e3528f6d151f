import { dirname } from 'node:path';
import { ConfigError } from '@cr/core';
import { DEFAULT_CONFIG, ONE_SHOT, describeZodError, loadConfigFile, type ConfigLayer, type Logger, type ProgressReporter } from '@cr/core/engine';
import { configSchema, type CrConfig } from '@cr/schemas';
import { openSession, type Session } from './session.js';

/** What every function of the library takes besides its own options. */
export interface CommonOptions {
  /**
   * A config file to load, as `cr --config FILE` does (cr loads it only if root or you own it and
   * no one else can write it). The library never searches for `.crrc` on its own.
   */
  configFile?: string;
  /** Settings as a config file holds them (`policy`, `checkpoint`, `restore`, `plugins` …), applied over `configFile`. */
  config?: CrConfig;
  /** Plugin packages or module paths to load beside the built-in ones (the config's `plugins`), resolved from `cwd`. */
  plugins?: readonly string[];
  /** Options of plugins by resource type (the config's `pluginOptions`), each checked by its plugin's schema. */
  pluginOptions?: Readonly<Record<string, unknown>>;
  /** Load cr's built-in plugins (tasks, mm, files …). Default: true. */
  builtinPlugins?: boolean;
  /** Where `plugins` are resolved from, after the config file's directory. Default: process.cwd(). */
  cwd?: string;
  /** Aborts the work: a checkpoint lets its targets go and writes nothing, a restore removes what it created. */
  signal?: AbortSignal;
  /**
   * Where cr logs, as pino's logger takes lines (a pino logger fits as it is): phases with their
   * timings (info), each object's steps and decisions (debug), warnings, and a failure (error).
   */
  logger?: Logger;
  /** Told of long work as it goes: a phase's objects, a blob's bytes (the CLI draws bars from it). */
  progress?: ProgressReporter;
}

/**
 * The session for one call: cr's defaults, the config file, `options.config`, then what the call's
 * own options set (`extra`, in the place of the CLI's flags: source `flag NAME`), each layer
 * validated as a config file is.
 */
export async function sessionFor(options: CommonOptions, extra: Readonly<Record<string, CrConfig>> = {}): Promise<Session> {
  const cwd = options.cwd ?? process.cwd();
  const file = options.configFile === undefined ? { config: {} } : await loadConfigFile({ cwd, file: options.configFile });
  const layers: ConfigLayer[] = [{ source: 'default', config: DEFAULT_CONFIG }];
  if (file.filepath) layers.push({ source: `file ${file.filepath}`, config: file.config });
  const given: Record<string, CrConfig | undefined> = {
    config: options.config,
    plugins: options.plugins && { plugins: [...options.plugins] },
    pluginOptions: options.pluginOptions && { pluginOptions: { ...options.pluginOptions } },
    ...extra,
  };
  for (const [name, config] of Object.entries(given)) {
    if (config === undefined) continue;
    const source = name === 'config' ? 'option config' : `flag ${name}`;
    layers.push({ source, config: checkedConfig(config, source) });
  }
  return openSession({
    layers,
    searchFrom: [...(file.filepath ? [dirname(file.filepath)] : []), cwd],
    builtinPlugins: options.builtinPlugins,
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.progress ? { progress: options.progress } : {}),
  });
}

/** `config` if it is a valid config, else a ConfigError naming each bad key path. */
function checkedConfig(config: unknown, source: string): CrConfig {
  const parsed = configSchema.safeParse(config, ONE_SHOT);
  if (!parsed.success) throw new ConfigError(`invalid ${source}:\n  ${describeZodError(parsed.error, config).join('\n  ')}`);
  return parsed.data;
}
