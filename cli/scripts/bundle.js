// Bundles cr's command line for start-up speed: bin/run.js loads dist/bundle/main.js, and oclif
// loads each command from dist/bundle/commands. Node 20 spends most of cr's start-up finding,
// reading and compiling modules (it has no compile cache): oclif alone is some 200 files, zod 100,
// @cr/core 75. The bundle holds them, cr's own packages and the built-in plugins, in a few chunks
// that the commands share. Left outside it: native addons (koffi, @node-rs/xxhash, and the
// compressors core requires when asked), pino (its transports run files in worker threads),
// cosmiconfig (it imports config files and loaders of its own), oclif's plugins (loaded by
// package name) and TypeScript (which oclif loads only for .ts commands in development).
//
// A plugin from outside cr's install imports @cr/core, zod … by name: the bundle also has one
// module per such package (shared/*.js) that exports the bundle's copy, and
// dist/bundle/shared-modules.json maps each package's name to it, for the resolve hook of
// src/shared-modules-hook.ts, so that such a plugin shares them with cr as it does without a bundle.
//
// import.meta.url in a bundled module of cr's is the URL of the module it came from, where it is
// installed (cr finds its package.json, its install and its lazily required packages from there),
// not the bundle's.
//
// Then writes oclif.manifest.json (what `oclif manifest` writes): the commands' ids, flags, args
// and help, so that a run imports only the command it runs instead of every command file.
import { existsSync, readFileSync, readdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'bundle');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const external = [
  'koffi',
  '@node-rs/xxhash',
  '@mongodb-js/zstd',
  'lz4-napi',
  'pino',
  'reflect-metadata',
  'cosmiconfig',
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

const shared = sharedSpecifiers();
const sharedEntry = (spec) => `shared/${spec.replaceAll('/', '+')}`;

/** Whether module `spec` has a default export (read, not run: cr's modules cannot be loaded twice in one process, and the manifest below loads the bundle's). */
async function hasDefaultExport(spec) {
  const file = fileURLToPath(import.meta.resolve(spec, pathToFileURL(join(root, 'noop.js')).href));
  const { metafile } = await build({ entryPoints: [file], bundle: false, write: false, metafile: true, format: 'esm', platform: 'node', logLevel: 'silent' });
  return Object.values(metafile.outputs).some((o) => o.exports.includes('default'));
}

/** shared:SPEC is a module that re-exports SPEC, its default export too where it has one. */
const sharedModules = {
  name: 'cr-shared-modules',
  setup(b) {
    b.onResolve({ filter: /^shared:/ }, (args) => ({ path: args.path.slice('shared:'.length), namespace: 'cr-shared' }));
    b.onLoad({ filter: /.*/, namespace: 'cr-shared' }, async (args) => {
      const quoted = JSON.stringify(args.path);
      return { contents: `export * from ${quoted};${(await hasDefaultExport(args.path)) ? ` export { default } from ${quoted};` : ''}`, resolveDir: root, loader: 'js' };
    });
  },
};

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
        const entry = fileURLToPath(import.meta.resolve(name, pathToFileURL(join(root, 'noop.js')).href));
        url = `new URL(${JSON.stringify(`./${relative(dirname(entry), args.path)}`)}, import.meta.resolve(${JSON.stringify(name)})).href`;
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

rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [join(dist, 'main.js'), ...jsFiles(join(dist, 'commands')), ...shared.map((spec) => ({ in: `shared:${spec}`, out: sharedEntry(spec) }))],
  outdir: out,
  outbase: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  plugins: [sharedModules, ownImportMetaUrl, zodEnglishOnly],
  // cr tells oclif's parser errors apart by their class names.
  keepNames: true,
  logLevel: 'warning',
  // oclif's CommonJS modules call require(); an ES module bundle has none of its own. And the
  // Reflect metadata polyfill must be there before tsyringe loads: chunks do not keep the order
  // of the CommonJS modules they hold, but each chunk runs its banner first.
  banner: { js: "import { createRequire as __crCreateRequire } from 'node:module'; const require = __crCreateRequire(import.meta.url); require('reflect-metadata');" },
});
const sharedFiles = Object.fromEntries(shared.map((spec) => [spec, `${sharedEntry(spec)}.js`]));
writeFileSync(join(out, 'shared-modules.json'), `${JSON.stringify(sharedFiles, null, 2)}\n`);

const { Plugin } = await import('@oclif/core');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), `${JSON.stringify(plugin.manifest, null, 2)}\n`);
console.log(`cr: bundled ${relative(root, out)} (sharing ${shared.length} modules with plugins from outside) and wrote oclif.manifest.json (${plugin.commandIDs.length} commands)`);
