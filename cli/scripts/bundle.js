// Bundles cr's command line for start-up speed into one CommonJS file, dist/bundle/cr.cjs, that
// src/bundle-loader.cts compiles with V8's code cache (node 20 has no compile cache of its own, and
// caches code only for scripts, not ES modules). It holds oclif, zod, tsyringe, cr's own packages
// and the built-in plugins, cosmiconfig and the Reflect metadata polyfill (each a few ms to load
// and compile on every command from outside). Left outside it: native addons (koffi,
// @node-rs/xxhash, and the compressors core requires when asked), pino (its transports run files
// in worker threads), cli-progress (loaded only when a bar is drawn), oclif's plugins (loaded by
// package name) and TypeScript (which oclif and cosmiconfig load only for .ts files).
//
// oclif finds the commands through explicit discovery (package.json oclif.commands), in
// src/bundled-commands.cts, which hands it the bundle's COMMANDS.
//
// A plugin from outside cr's install imports @cr/core, zod … by name: the bundle also exports each
// such package's namespace, dist/bundle/shared/*.js are ES modules with its names, and
// dist/bundle/shared-modules.json maps each package's name to its file, for the resolve hook of
// src/shared-modules-hook.ts, so that such a plugin shares them with cr as it does without a bundle.
//
// import.meta.url in a bundled module of cr's is the URL of the module it came from, where it is
// installed (cr finds its package.json, its install and its lazily required packages from there),
// not the bundle's.
//
// Then writes oclif.manifest.json (what `oclif manifest` writes): the commands' ids, flags, args
// and help, which oclif reads instead of loading the commands.
import { existsSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { init as initLexer, parse as lexModule } from 'es-module-lexer';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'bundle');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
/** require as from the CLI's root: where node finds the packages the bundle takes in. */
const requireFromRoot = createRequire(join(root, 'noop.js'));

const external = [
  'koffi',
  '@node-rs/xxhash',
  '@mongodb-js/zstd',
  'lz4-napi',
  'pino',
  'cli-progress',
  ...pkg.oclif.plugins,
  'typescript',
  'ts-node',
  'tsx',
];

/** Packages a plugin may import and share with cr: every @cr package the CLI depends on (transitively), with each of its exports, and zod and tsyringe. */
function sharedSpecifiers() {
  const seen = new Set();
  const specs = ['zod', 'tsyringe'];
  const visit = (name, from) => {
    if (seen.has(name)) return;
    seen.add(name);
    const dir = packageDir(name, from);
    const p = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
    for (const [path, target] of Object.entries(p.exports ?? { '.': p.main })) {
      if (typeof target === 'string' && target.endsWith('.js') && !path.includes('*')) specs.push(path === '.' ? name : `${name}/${path.slice(2)}`);
    }
    for (const dep of Object.keys(p.dependencies ?? {})) if (dep.startsWith('@cr/')) visit(dep, dir);
  };
  for (const dep of Object.keys(pkg.dependencies)) if (dep.startsWith('@cr/')) visit(dep, root);
  return specs;
}

/** Where package `name` is installed, as node finds it from `from`. */
function packageDir(name, from) {
  for (let dir = from; ; dir = dirname(dir)) {
    const candidate = join(dir, 'node_modules', name);
    if (existsSync(join(candidate, 'package.json'))) return realpathSync(candidate);
    if (dir === dirname(dir)) throw new Error(`cr: bundling: package ${name} is not installed (looked from ${from})`);
  }
}

function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []));
}

/**
 * The bundle's entry: `main` (which is given cr's commands), `serve` (the cr service, which runs
 * `main` for its callers), every command class by oclif id
 * (from the file's path under dist/commands, `inspect/ps.js` → `inspect:ps`), and the namespace
 * of every module shared with plugins from outside.
 *
 * A command's module, and a shared one, is evaluated when first asked for (a getter that
 * requires it; esbuild makes each such module run at its first require): oclif, which reads the
 * commands from its manifest, asks only for the command it runs, and only a plugin from outside
 * asks for a shared module; a command no longer evaluates the modules only other commands use.
 * A shared package whose require reaches another file than its import (zod, which has a
 * CommonJS build beside its ES modules) is imported: a require would bundle a second copy of it.
 */
function entrySource(shared) {
  const commandsDir = join(dist, 'commands');
  const commands = jsFiles(commandsDir).map((file) => ({ file, id: relative(commandsDir, file).slice(0, -'.js'.length).split(sep).join(':') }));
  const lazy = (spec) => requireFromRoot.resolve(spec) === fileURLToPath(import.meta.resolve(spec));
  return [
    // First: the Reflect metadata polyfill must be there before tsyringe loads.
    "import 'reflect-metadata';",
    `import { main as runCommandLine } from ${JSON.stringify(join(dist, 'main.js'))};`,
    `export const COMMANDS = { ${commands.map((c) => `get ${JSON.stringify(c.id)}() { return require(${JSON.stringify(c.file)}).default; }`).join(', ')} };`,
    'export const main = (argv, root) => runCommandLine(argv, root, COMMANDS);',
    `export const serve = (options) => require(${JSON.stringify(join(dist, 'service', 'daemon-main.js'))}).runDaemon({ ...options, run: (argv) => runCommandLine(argv, options.root, COMMANDS) });`,
    ...shared.map((spec, i) => (lazy(spec) ? '' : `import * as shared${i} from ${JSON.stringify(spec)};`)),
    `export const shared = { ${shared.map((spec, i) => `${lazy(spec) ? `get ${JSON.stringify(spec)}() { return require(${JSON.stringify(spec)}); }` : `${JSON.stringify(spec)}: shared${i}`}`).join(', ')} };`,
  ].join('\n');
}

/**
 * shared/SPEC.js: an ES module with the names of the bundle's copy of SPEC, for the resolve hook
 * to hand a plugin from outside (src/shared-modules-hook.ts).
 */
function sharedModuleSource(namespace, spec) {
  const names = Object.keys(namespace);
  return [
    "import loader from '../../bundle-loader.cjs';",
    '',
    `const namespace = loader.loadBundle().shared[${JSON.stringify(spec)}];`,
    ...names.map((name, i) => `const export${i} = namespace[${JSON.stringify(name)}];`),
    `export { ${names.map((name, i) => `export${i} as ${JSON.stringify(name)}`).join(', ')} };`,
    '',
  ].join('\n');
}

/**
 * Turns every import() of the bundle into __crImport(), the loader's (src/bundle-loader.cts): node
 * 20 loses a script's import() handler when it compiles the script from a code cache, and oclif
 * (its ES module plugins), pino and plugins from outside are loaded with import(). The lexer
 * tells real import() calls from the word in strings and comments.
 */
function sendDynamicImportsToLoader(file) {
  const source = readFileSync(file, 'utf8');
  const [imports] = lexModule(source);
  const starts = imports.filter((i) => i.d > -1).map((i) => i.ss);
  let rewritten = '';
  let from = 0;
  for (const start of starts) {
    if (source.slice(start, start + 'import'.length) !== 'import') throw new Error(`cr: bundling: no import() at ${start} of ${file}`);
    rewritten += `${source.slice(from, start)}__crImport`;
    from = start + 'import'.length;
  }
  writeFileSync(file, rewritten + source.slice(from));
  if (imports.some((i) => i.d === -2)) throw new Error(`cr: bundling: import.meta left in ${file}`);
}

/**
 * Makes the bundle pure ASCII, which src/bundle-loader.cts reads as latin1: 0.25 ms instead of
 * 5-7 ms decoding it as UTF-8 (measured when it was 2.5 MB, before it was minified), on every
 * command. esbuild escapes non-ASCII characters in most strings but leaves them in comments and
 * regular expressions; each becomes a \uXXXX escape, which means the same character in a string,
 * a template, a regular expression or a name, and nothing in a comment.
 */
function escapeNonAscii(file) {
  const source = readFileSync(file, 'utf8');
  writeFileSync(file, source.replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}

/** The directory of the package.json nearest above `file`, and that package's name. */
function packageOf(file) {
  for (let dir = dirname(file); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return { dir, name: JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name };
  }
  throw new Error(`cr: bundling: ${file} is in no package`);
}

/**
 * import.meta.url, in each bundled module of cr's packages, is that module's own URL, found where
 * the package is installed when the bundle runs (a package moves when npm installs it): from the
 * CLI's own root for the CLI's modules, and from where the package's entry resolves for the others.
 */
const ownImportMetaUrl = {
  name: 'cr-own-import-meta-url',
  setup(b) {
    b.onLoad({ filter: /\.js$/ }, (args) => {
      if (args.path.includes(`${sep}node_modules${sep}`)) return undefined;
      const source = readFileSync(args.path, 'utf8');
      if (!source.includes('import.meta.url')) return undefined;
      const { dir, name } = packageOf(args.path);
      let url;
      if (name === pkg.name) {
        const cliRoot = 'import.meta.url.slice(0, import.meta.url.lastIndexOf("/dist/bundle/") + 1)';
        url = `new URL(${JSON.stringify(relative(dir, args.path))}, ${cliRoot}).href`;
      } else {
        const entry = requireFromRoot.resolve(name);
        url = `new URL(${JSON.stringify(`./${relative(dirname(entry), args.path)}`)}, __crPackageUrl(${JSON.stringify(name)})).href`;
      }
      return { contents: source.replaceAll('import.meta.url', url), loader: 'js' };
    });
  },
};

/**
 * zod's namespace `z.locales` holds the error messages of some 50 languages, a third of zod's
 * code, which node would compile at every start; zod itself uses English unless told otherwise,
 * and cr never tells it otherwise. The bundle's `z.locales` has English alone.
 */
const zodEnglishOnly = {
  name: 'cr-zod-english-only',
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${sep}zod${sep}v4${sep}`) ? { path: join(dirname(args.importer), '..', 'locales', 'en.js'), namespace: 'cr-zod-locales' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'cr-zod-locales' }, (args) => ({ contents: `export { default as en } from ${JSON.stringify(args.path)};`, resolveDir: root, loader: 'js' }));
  },
};

/**
 * oclif sorts every plugin's command ids with localeCompare as it loads, and the first
 * localeCompare of a process builds ICU's collator: 5-9 ms of every command. cr's ids are ASCII
 * words, colons and hyphens, which code-point order sorts as the collator does. The build fails
 * if oclif's line is not there as expected (another oclif), rather than bundle it unchanged.
 */
const oclifPlainCommandOrder = {
  name: 'cr-oclif-plain-command-order',
  setup(b) {
    b.onLoad({ filter: /[\\/]@oclif[\\/]core[\\/]lib[\\/]config[\\/]plugin\.js$/ }, (args) => {
      const source = readFileSync(args.path, 'utf8');
      const sort = '.sort((a, b) => a.id.localeCompare(b.id))';
      if (source.split(sort).length !== 2) throw new Error(`cr: bundling: ${args.path} no longer sorts command ids with "${sort}" once; see oclifPlainCommandOrder`);
      return { contents: source.replace(sort, '.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))'), loader: 'js' };
    });
  },
};

await initLexer;
rmSync(out, { recursive: true, force: true });
const shared = sharedSpecifiers();
await build({
  stdin: { contents: entrySource(shared), resolveDir: root, sourcefile: 'cr-entry.js', loader: 'js' },
  outfile: join(out, 'cr.cjs'),
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  external,
  plugins: [ownImportMetaUrl, zodEnglishOnly, oclifPlainCommandOrder],
  // cr tells oclif's parser errors apart by their class names.
  keepNames: true,
  // Every command reads the bundle and V8 deserialises its code cache: minified, 1.2 MB instead of
  // 2.5 MB, read 2.3 ms sooner and the cache smaller. Functions and classes keep their names
  // (keepNames), which is what a stack trace of the bundle shows of use anyway.
  minify: true,
  logLevel: 'warning',
  // Parameters of the module wrapper src/bundle-loader.cts runs the bundle in.
  define: { 'import.meta.url': '__crImportMetaUrl' },
});
sendDynamicImportsToLoader(join(out, 'cr.cjs'));
escapeNonAscii(join(out, 'cr.cjs'));

const { Plugin } = await import('@oclif/core');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), `${JSON.stringify(plugin.manifest, null, 2)}\n`);

// The manifest loaded the bundle (through src/bundled-commands.cts): its shared namespaces are those a plugin will get.
const { loadBundle } = createRequire(import.meta.url)(join(dist, 'bundle-loader.cjs'));
const bundle = loadBundle();
mkdirSync(join(out, 'shared'));
const sharedFiles = {};
for (const spec of shared) {
  const file = `shared/${spec.replaceAll('/', '+')}.js`;
  writeFileSync(join(out, file), sharedModuleSource(bundle.shared[spec], spec));
  sharedFiles[spec] = file;
}
writeFileSync(join(out, 'shared-modules.json'), `${JSON.stringify(sharedFiles, null, 2)}\n`);
console.log(`cr: bundled ${relative(root, join(out, 'cr.cjs'))} (sharing ${shared.length} modules with plugins from outside) and wrote oclif.manifest.json (${plugin.commandIDs.length} commands)`);
