import { closeSync, constants, fstatSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Script } from 'node:vm';
import type { Command } from '@oclif/core';

/** What the bundle (dist/bundle/cr.cjs, made by scripts/bundle.js) exports. */
export interface CrBundle {
  main(argv: string[], root: string): Promise<void>;
  /** Runs the cr service (src/service/daemon-main.ts) until it is stopped. */
  serve(options: { socket: string; root: string; logFile?: string; ready(): void }): Promise<void>;
  /** Every command class by oclif id: the target of oclif's explicit command discovery. */
  COMMANDS: Record<string, Command.Class>;
  /** The namespace of each module a plugin from outside shares with cr, by specifier. */
  shared: Record<string, Record<string, unknown>>;
}

const BUNDLE = join(__dirname, 'bundle', 'cr.cjs');
const CACHE_DIR = join(dirname(BUNDLE), 'code-cache');

let loaded: CrBundle | undefined;

/**
 * The bundle, compiled once per process. Node 20 has no compile cache of its own, and compiling
 * the bundle's 1.2 MB is most of cr's start-up: this keeps V8's code cache of it, one per command
 * word (`cache`; none without one). The first run of a command that succeeds writes it as it
 * exits, so that it holds the functions the command compiled on the way and not just the top
 * level. V8 checks a cache only against the source's length and its own version and flags, so
 * each build empties the cache directory (scripts/bundle.js) and no cache meets another bundle; a
 * cache V8 refuses is written anew. An install cr cannot write to runs without one.
 */
export function loadBundle(cache?: string): CrBundle {
  if (loaded) return loaded;
  const cacheFile = cache === undefined ? undefined : join(CACHE_DIR, `${cache}-${process.version}-${process.arch}.bin`);
  const cachedData = cacheFile === undefined ? undefined : trustedCache(cacheFile);
  // The CommonJS module wrapper: the bundle is CommonJS so that its code can be cached, which
  // node 20 allows only for scripts. esbuild renames import.meta.url to __crImportMetaUrl, and
  // scripts/bundle.js every import() to __crImport (see dynamicImport). __crPackageUrl tells the
  // bundled modules of cr's packages where their package is installed.
  // latin1: the bundle is ASCII (scripts/bundle.js escapes the rest), and latin1 needs no decoding.
  const wrapper = `(function (exports, require, module, __filename, __dirname, __crImportMetaUrl, __crImport, __crPackageUrl) {${readFileSync(BUNDLE, 'latin1')}\n})`;
  const script = new Script(wrapper, { filename: BUNDLE, cachedData });
  const module = { exports: {} as CrBundle };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  const url = pathToFileURL(BUNDLE).href;
  const require = createRequire(BUNDLE);
  const packageUrl = (name: string) => pathToFileURL(require.resolve(name)).href;
  run(module.exports, require, module, BUNDLE, dirname(BUNDLE), url, dynamicImport(url), packageUrl);
  loaded = module.exports;
  if (cacheFile && (cachedData === undefined || script.cachedDataRejected)) {
    process.once('exit', (code) => {
      if (code === 0) writeCache(cacheFile, script);
    });
  }
  return loaded;
}

/**
 * The cache in `file`, if there is one cr may run: a code cache is code, and cr usually runs as
 * root, so, as for config files and plugins, it must belong to root or to the user running cr and
 * be writable by no one else (a symbolic link is not followed).
 */
function trustedCache(file: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const { uid, mode } = fstatSync(fd);
    if ((uid !== 0 && uid !== process.geteuid!()) || (mode & 0o022) !== 0) return undefined;
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Best effort: a read-only install, or a full disk, only costs the next run its compile. */
function writeCache(file: string, script: Script): void {
  const partial = `${file}.${process.pid}`;
  try {
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    // wx: never through a file or link someone else put there first.
    writeFileSync(partial, script.createCachedData(), { flag: 'wx', mode: 0o644 });
    renameSync(partial, file);
  } catch {
    rmSync(partial, { force: true });
  }
}

/**
 * import() for the bundle (scripts/bundle.js renames its calls): a script compiled from a code
 * cache by node 20 has lost its own import() handler. oclif's plugins, pino and plugins from
 * outside are loaded this way, and only they start node's ES module loader: cr itself is
 * CommonJS from bin/run.js on, which saves a plain command the loader's start-up. Relative
 * specifiers are the bundle's.
 */
function dynamicImport(bundleUrl: string): (specifier: string, options?: ImportCallOptions) => Promise<unknown> {
  return (specifier, options) => import(/^\.\.?\//.test(specifier) ? new URL(specifier, bundleUrl).href : specifier, options);
}
