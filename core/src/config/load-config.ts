import { readFileSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { configSchema, type CrConfig } from '@cr/schemas';
import { defaultLoaders, getDefaultSearchPlaces, globalConfigSearchPlaces, type Loaders } from 'cosmiconfig';
import { ConfigError } from '../errors.js';
import { assertTrustedFile } from '../trust/safe-directories.js';
import { describeZodError } from '../zod-issues.js';
import { ONE_SHOT } from '../one-shot-parse.js';

export const CONFIG_MODULE_NAME = 'cr';

export interface ConfigFile {
  config: CrConfig;
  /** The file it came from; absent when no config file was found. */
  filepath?: string;
}

/**
 * Finds and validates the config: `.crrc`, `.crrc.json`, `.crrc.yaml`, `cr.config.js`/`.ts`,
 * `package.json#cr` …, searched from `cwd` upwards to the home directory (or /), then in the
 * user's config directory (cosmiconfig's search places and loaders, module name "cr"), or exactly
 * `file` when given. The file must be one cr may trust (see safe-directories.ts). An invalid file
 * is one ConfigError naming the file and every bad key path.
 *
 * cosmiconfig's own search is not used: it reads and runs a "meta config" (`.config/config.js`
 * …) from the working directory before anything can check who wrote it.
 */
export async function loadConfigFile(options: { cwd: string; file?: string; env?: NodeJS.ProcessEnv }): Promise<ConfigFile> {
  const env = options.env ?? process.env;
  const found = options.file ? readTrusted(resolve(options.file), env) : findConfigFile(options.cwd, env);
  if (!found) return { config: {} };
  let data: unknown;
  try {
    data = found.text.trim() === '' ? {} : await loadConfigData(found.filepath, found.text);
  } catch (err) {
    throw new ConfigError(`cannot read config ${found.filepath}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  const parsed = configSchema.safeParse(data ?? {}, ONE_SHOT);
  if (!parsed.success) {
    const lines = describeZodError(parsed.error, data);
    throw new ConfigError(`invalid config in ${found.filepath}:\n  ${lines.join('\n  ')}`);
  }
  return { config: parsed.data, filepath: found.filepath };
}

/** The first non-empty config file of the search, with its text; a package.json counts only with a "cr" key. */
function findConfigFile(cwd: string, env: NodeJS.ProcessEnv): { filepath: string; text: string } | undefined {
  for (const candidate of searchPlaces(resolve(cwd), env)) {
    let st;
    try {
      st = statSync(candidate);
    } catch {
      continue;
    }
    if (st.isDirectory()) continue;
    // Reading another user's file is harmless (loading it is not), but a FIFO would hang cr.
    if (!st.isFile()) throw new ConfigError(`config ${candidate} is not a regular file; remove it, or pass --config FILE`);
    const text = readConfigText(candidate);
    if (text.trim() === '') continue;
    if (basename(candidate) === 'package.json' && !hasOwnKey(parseJsonOrUndefined(text), CONFIG_MODULE_NAME)) continue;
    return readTrusted(candidate, env);
  }
  return undefined;
}

/** The text of a config file cr may trust, read once it is known to be one. */
function readTrusted(filepath: string, env: NodeJS.ProcessEnv): { filepath: string; text: string } {
  try {
    if (!statSync(filepath).isFile()) throw new ConfigError(`config ${filepath} is not a regular file`);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(`cannot read config ${filepath}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
  assertTrustedFile(filepath, 'config', ConfigError, env);
  return { filepath, text: readConfigText(filepath) };
}

/** cosmiconfig's "global" search: each directory from `cwd` up to the home directory (or /), then the user's config directory. */
function* searchPlaces(cwd: string, env: NodeJS.ProcessEnv): Generator<string> {
  const home = homeDirectory(env);
  for (let dir = cwd; ; dir = dirname(dir)) {
    for (const place of getDefaultSearchPlaces(CONFIG_MODULE_NAME)) yield join(dir, place);
    if (dir === home || dirname(dir) === dir) break;
  }
  const configHome = env.XDG_CONFIG_HOME || (home && join(home, '.config'));
  if (!configHome) return;
  const globalDir = join(configHome, CONFIG_MODULE_NAME);
  for (const place of globalConfigSearchPlaces) yield join(globalDir, place);
}

/** HOME, else the password database's; a uid with neither (a container's) has no user config. */
function homeDirectory(env: NodeJS.ProcessEnv): string | undefined {
  if (env.HOME) return env.HOME;
  try {
    return homedir();
  } catch {
    return undefined;
  }
}

function readConfigText(filepath: string): string {
  try {
    return readFileSync(filepath, 'utf8');
  } catch (err) {
    throw new ConfigError(`cannot read config ${filepath}: ${(err as Error).message.split('\n')[0]}`, { cause: err });
  }
}

async function loadConfigData(filepath: string, text: string): Promise<unknown> {
  const loader = (defaultLoaders as Loaders)[extname(filepath) || 'noExt'];
  if (!loader) throw new Error(`no loader for files ending in ${extname(filepath)}; use .json, .yaml, .js, .cjs, .mjs or .ts`);
  const data: unknown = await loader(filepath, text);
  return basename(filepath) === 'package.json' ? (data as Record<string, unknown>)[CONFIG_MODULE_NAME] : data;
}

function parseJsonOrUndefined(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const hasOwnKey = (v: unknown, key: string) => typeof v === 'object' && v !== null && Object.hasOwn(v, key);

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
