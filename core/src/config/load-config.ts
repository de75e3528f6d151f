import { configSchema, type CrConfig } from '@cr/schemas';
import { cosmiconfig } from 'cosmiconfig';
import { ConfigError } from '../errors.js';
import { describeZodError } from '../zod-issues.js';

export const CONFIG_MODULE_NAME = 'cr';

export interface ConfigFile {
  config: CrConfig;
  /** The file it came from; absent when no config file was found. */
  filepath?: string;
}

/**
 * Finds and validates the config: `.crrc`, `.crrc.json`, `.crrc.yaml`, `cr.config.js`/`.ts`,
 * `package.json#cr` …, searched from `cwd` upwards (cosmiconfig, module name "cr"), or exactly
 * `file` when given. An invalid file is one ConfigError naming the file and every bad key path.
 */
export async function loadConfigFile(options: { cwd: string; file?: string }): Promise<ConfigFile> {
  const explorer = cosmiconfig(CONFIG_MODULE_NAME, { searchStrategy: 'global' });
  let result;
  try {
    result = options.file ? await explorer.load(options.file) : await explorer.search(options.cwd);
  } catch (err) {
    const where = options.file ?? (err as { filepath?: string }).filepath ?? 'the config file';
    throw new ConfigError(`cannot read config ${where}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  if (!result) return { config: {} };
  const data: unknown = result.isEmpty ? {} : result.config;
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    const lines = describeZodError(parsed.error, data);
    throw new ConfigError(`invalid config in ${result.filepath}:\n  ${lines.join('\n  ')}`);
  }
  return { config: parsed.data, filepath: result.filepath };
}

/** One layer of configuration and where it came from. Later layers win. */
export interface ConfigLayer {
  source: string;
  config: CrConfig;
}

export interface ResolvedConfig {
  config: CrConfig;
  /** For every key path that has a value: the source of that value. */
  sources: Record<string, string>;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Merges layers key by key (arrays are values, not merged) and remembers who set each key. */
export function resolveConfig(layers: readonly ConfigLayer[]): ResolvedConfig {
  const config: Record<string, unknown> = {};
  const sources: Record<string, string> = {};
  const merge = (into: Record<string, unknown>, from: Record<string, unknown>, prefix: string, source: string) => {
    for (const [key, value] of Object.entries(from)) {
      if (value === undefined) continue;
      const path = prefix ? `${prefix}.${key}` : key;
      if (isPlainObject(value)) {
        if (!isPlainObject(into[key])) into[key] = {};
        merge(into[key] as Record<string, unknown>, value, path, source);
      } else {
        into[key] = value;
        sources[path] = source;
      }
    }
  };
  for (const layer of layers) merge(config, layer.config as Record<string, unknown>, '', layer.source);
  return { config: config as CrConfig, sources };
}
