// Bundles cr's command-line layer for start-up speed: bin/run.js loads dist/bundle/main.js, and
// oclif loads each command from dist/bundle/commands. Node spends most of cr's start-up finding,
// reading and compiling modules; oclif alone is some 200 files. The bundle holds oclif and cr's
// own CLI code in a few chunks that the commands share. Left outside it: @cr/* (plugins, also
// third-party ones, must share one @cr/core with the CLI), zod (records' schemas come from those
// packages), native addons, oclif's plugins (loaded by package name) and TypeScript (which oclif
// loads only for .ts commands in development).
// Then writes oclif.manifest.json (what `oclif manifest` writes): the commands' ids, flags, args
// and help, so that a run imports only the command it runs instead of every command file.
import { readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dist = join(root, 'dist');
const out = join(dist, 'bundle');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));

const BUNDLED = new Set(['@oclif/core', 'cli-table3', 'microdiff']);
const external = [...Object.keys(pkg.dependencies).filter((d) => !BUNDLED.has(d)), '@cr/*', 'typescript', 'ts-node', 'tsx'];

function jsFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? jsFiles(join(dir, e.name)) : e.name.endsWith('.js') ? [join(dir, e.name)] : []));
}

rmSync(out, { recursive: true, force: true });
await build({
  entryPoints: [join(dist, 'main.js'), ...jsFiles(join(dist, 'commands'))],
  outdir: out,
  outbase: dist,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  external,
  // cr tells oclif's parser errors apart by their class names.
  keepNames: true,
  logLevel: 'warning',
  // oclif's CommonJS modules call require(); an ES module bundle has none of its own.
  banner: { js: "import { createRequire as __crCreateRequire } from 'node:module'; const require = __crCreateRequire(import.meta.url);" },
});

const { Plugin } = await import('@oclif/core');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), `${JSON.stringify(plugin.manifest, null, 2)}\n`);
console.log(`cr: bundled ${relative(root, out)} and wrote oclif.manifest.json (${plugin.commandIDs.length} commands)`);
