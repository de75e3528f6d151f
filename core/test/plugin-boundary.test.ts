import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const REPO = join(import.meta.dirname, '..', '..');

/** Every source file of the built-in plugins, the third-party plugin fixtures and the plugin `cr plugin new` writes. */
function pluginSources(): string[] {
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return name === 'node_modules' || name === 'dist' ? [] : walk(path);
      return /\.(ts|js)$/.test(name) ? [path] : [];
    });
  const plugins = readdirSync(join(REPO, 'plugins')).map((p) => join(REPO, 'plugins', p, 'src'));
  const fixtures = readdirSync(join(REPO, 'test', 'fixtures'))
    .filter((f) => f.endsWith('-plugin'))
    .map((f) => join(REPO, 'test', 'fixtures', f));
  return [...plugins, ...fixtures, join(REPO, 'plugin-kit', 'template', 'src')].flatMap(walk);
}

/** The module specifiers a source file imports or re-exports, static or dynamic. */
function importsOf(source: string): string[] {
  const found = [...source.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"]*?from\s+['"]([^'"]+)['"]/g), ...source.matchAll(/\bimport\s*\(\s*['"]([^'"]+)['"]\s*\)/g)];
  return [...source.matchAll(/(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g), ...found].map((m) => m[1]!);
}

describe('the plugin boundary', () => {
  const files = pluginSources();

  it('finds the sources it checks', () => {
    expect(files.map((f) => relative(REPO, f))).toEqual(expect.arrayContaining(['plugins/tasks/src/index.ts', 'plugins/sysvipc-base/src/index.ts', 'test/fixtures/mqueue-plugin/index.js', 'plugin-kit/template/src/index.ts']));
  });

  it('plugins reach core only through @cr/core, the plugin API, and the kernel only through its services', () => {
    const outside = files.flatMap((file) =>
      importsOf(readFileSync(file, 'utf8'))
        .filter((spec) => (spec.startsWith('@cr/core') && spec !== '@cr/core') || spec === 'koffi' || /(^|\/)core\/(src|dist)\//.test(spec))
        .map((spec) => `${relative(REPO, file)} imports ${spec}`),
    );
    expect(outside).toEqual([]);
  });

  it('reads imports the way the check above relies on', () => {
    expect(importsOf("import { a } from '@cr/core';\nimport type { B } from '@cr/core/engine';\nexport * from 'koffi';\nconst m = await import('../../core/src/x.js');")).toEqual([
      '@cr/core',
      '@cr/core/engine',
      'koffi',
      '../../core/src/x.js',
    ]);
  });
});
