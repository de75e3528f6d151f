import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CrError, ExitCode } from '@cr/api';

const KIT = dirname(dirname(fileURLToPath(import.meta.url)));
const TEMPLATE = join(KIT, 'template');
/** Template files stored under another name, so that npm and git leave them alone in the kit. */
const RENAMED: Record<string, string> = { gitignore: '.gitignore' };

export interface ScaffoldOptions {
  /** The directory to create; its last part is the package name unless `name` is given. */
  dir: string;
  /** The npm package name. Default: the directory's name. */
  name?: string;
  /** The resource type the plugin owns. Default: the package name without a `cr-plugin-` prefix. */
  type?: string;
  /** One line for `cr types`. */
  description?: string;
}

export interface Scaffolded {
  dir: string;
  name: string;
  type: string;
  /** The files written, relative to `dir`. */
  files: string[];
  /** How the cr packages are depended on: `file:` links into a cr checkout, or registry versions. */
  crPackages: Record<string, string>;
}

const PACKAGE_NAME = /^(@[a-z0-9][a-z0-9._-]*\/)?[a-z0-9][a-z0-9._-]*$/;
const TYPE_NAME = /^[a-z][a-z0-9]*(-[a-z0-9]+)*$/;

/**
 * Writes a new plugin package from the kit's template: package.json, tsconfig.json, src/index.ts
 * (a working example type), src/record.ts (its record and options schemas), test/plugin.test.ts
 * (a real checkpoint and restore through the kit's harness) and a README. The directory must not
 * exist or be empty.
 */
export function scaffoldPlugin(options: ScaffoldOptions): Scaffolded {
  const dir = resolve(options.dir);
  const name = options.name ?? basename(dir);
  if (!PACKAGE_NAME.test(name)) throw new CrError(`plugin new: "${name}" is not an npm package name (lower-case letters, digits, "-", "." and "_", e.g. cr-plugin-foo); pass another directory or --name`, ExitCode.Usage);
  const type = options.type ?? name.replace(/^@[^/]+\//, '').replace(/^cr-plugin-/, '');
  if (!TYPE_NAME.test(type)) throw new CrError(`plugin new: "${type}" is not a resource type name (lower-case words joined by dashes, e.g. coredump-filter); pass --type`, ExitCode.Usage);
  if (existsSync(dir) && readdirSync(dir).length > 0) throw new CrError(`plugin new: ${dir} exists and is not empty; choose a new directory`, ExitCode.Usage);
  const crPackages = crPackageSpecs();
  const values: Record<string, string> = {
    __PACKAGE__: name,
    __TYPE__: type,
    __CLASS__: className(type),
    __DESCRIPTION__: options.description ?? `the core dump filter of each process (/proc/PID/coredump_filter), as resource type ${type}`,
    __CORE__: crPackages['@cr/core']!,
    __PLUGIN_TASKS__: crPackages['@cr/plugin-tasks']!,
    __PLUGIN_KIT__: crPackages['@cr/plugin-kit']!,
  };
  const files = templateFiles(TEMPLATE);
  for (const file of files) {
    const text = readFileSync(join(TEMPLATE, file), 'utf8').replace(/__[A-Z_]+__/g, (key) => values[key] ?? key);
    const target = join(dir, RENAMED[file] ?? file);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, text);
  }
  return { dir, name, type, files: files.map((f) => RENAMED[f] ?? f).sort(), crPackages };
}

function templateFiles(root: string, under = ''): string[] {
  return readdirSync(join(root, under), { withFileTypes: true }).flatMap((entry) => {
    const path = join(under, entry.name);
    return entry.isDirectory() ? templateFiles(root, path) : [path];
  });
}

/** "coredump-filter" → "CoredumpFilterPlugin". */
function className(type: string): string {
  return `${type.split('-').map((w) => w[0]!.toUpperCase() + w.slice(1)).join('')}Plugin`;
}

/**
 * The cr packages a new plugin builds and tests against. From a cr checkout (a workspace, not an
 * install under node_modules), `file:` links to it, since its packages are not on a registry;
 * otherwise the installed version.
 */
function crPackageSpecs(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const packageDir = (name: string) => realpathSync(name === '@cr/plugin-kit' ? KIT : dirname(dirname(require.resolve(name))));
  return Object.fromEntries(
    ['@cr/core', '@cr/plugin-tasks', '@cr/plugin-kit'].map((name) => {
      const dir = packageDir(name);
      const version = (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { version: string }).version;
      return [name, relative('/', dir).split('/').includes('node_modules') ? `^${version}` : `file:${dir}`];
    }),
  );
}
