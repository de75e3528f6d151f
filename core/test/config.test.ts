import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '@cr/core';
import { DEFAULT_CONFIG, loadConfigFile, resolveConfig } from '@cr/core/engine';
import { afterEach, describe, expect, it } from 'vitest';

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));
const fresh = () => (dir = mkdtempSync(join(tmpdir(), 'cr-config-')));

describe('config loading', () => {
  it.each([
    ['.crrc', 'checkpoint:\n  exclude: [ipc-ns]\n'],
    ['.crrc', '{"checkpoint": {"exclude": ["ipc-ns"]}}'],
    ['.crrc.json', '{"checkpoint": {"exclude": ["ipc-ns"]}}'],
    ['.crrc.yaml', 'checkpoint:\n  exclude:\n    - ipc-ns\n'],
    ['cr.config.js', 'export default { checkpoint: { exclude: ["ipc-ns"] } };'],
    ['package.json', '{"name": "x", "cr": {"checkpoint": {"exclude": ["ipc-ns"]}}}'],
  ])('finds and validates %s', async (file, text) => {
    writeFileSync(join(fresh(), file), text);
    const loaded = await loadConfigFile({ cwd: dir });
    expect(loaded.filepath).toBe(join(dir, file));
    expect(loaded.config).toEqual({ checkpoint: { exclude: ['ipc-ns'] } });
  });

  it('names the file, the key path, what was found and what was expected', async () => {
    writeFileSync(join(fresh(), '.crrc.yaml'), 'policy:\n  rules:\n    - type: sysvipc-shm\n      decision: maybe\n');
    const err = await loadConfigFile({ cwd: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toContain(join(dir, '.crrc.yaml'));
    expect(message).toContain('policy.rules[0].decision');
    expect(message).toContain('found "maybe"');
    expect(message).toContain('"include"|"exclude"|"external"');
  });

  it('reports every problem of a file in one ConfigError', async () => {
    writeFileSync(join(fresh(), '.crrc.json'), JSON.stringify({ policy: { default: 'never', rules: [{ type: 'uts-ns', decision: 'keep' }] }, restore: { pinNs: 7 } }));
    const err = await loadConfigFile({ cwd: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(3);
    const lines = (err as Error).message.split('\n');
    expect(lines[0]).toBe(`invalid config in ${join(dir, '.crrc.json')}:`);
    expect(lines.slice(1).map((l) => l.trim().match(/^at "([^"]+)"/)?.[1]).sort()).toEqual(['policy.default', 'policy.rules[0].decision', 'restore.pinNs']);
    expect((err as Error).message).toContain('at "restore.pinNs": found 7; expected string');
  });

  it('searches upwards from the cwd, and loads exactly the file it is given', async () => {
    writeFileSync(join(fresh(), '.crrc.yaml'), 'restore:\n  pinNs: /run/up\n');
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    expect(await loadConfigFile({ cwd: join(dir, 'a', 'b') })).toEqual({ config: { restore: { pinNs: '/run/up' } }, filepath: join(dir, '.crrc.yaml') });
    writeFileSync(join(dir, 'a', 'other.json'), '{"plugins": ["./p.js"]}');
    expect(await loadConfigFile({ cwd: join(dir, 'a', 'b'), file: join(dir, 'a', 'other.json') })).toEqual({ config: { plugins: ['./p.js'] }, filepath: join(dir, 'a', 'other.json') });
  });

  it('rejects unknown keys and wrong types', async () => {
    writeFileSync(join(fresh(), '.crrc.json'), '{"checkpont": {}, "checkpoint": {"only": [42]}}');
    const message = ((await loadConfigFile({ cwd: dir }).catch((e: unknown) => e)) as Error).message;
    expect(message).toContain('unknown key "checkpont"');
    expect(message).toMatch(/at "checkpoint.only\[0\]": found 42; expected string/);
  });

  it('reports a file that is not valid YAML, naming it', async () => {
    writeFileSync(join(fresh(), '.crrc.yaml'), 'checkpoint: [unclosed\n');
    const err = await loadConfigFile({ cwd: dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toContain('.crrc.yaml');
  });

  it('takes named profiles and checks them like the rest of the file, naming the key path', async () => {
    writeFileSync(join(fresh(), '.crrc.yaml'), 'profiles:\n  nosysv:\n    checkpoint:\n      external: [sysvipc]\n    restore:\n      pinNs: /run/p\n');
    expect((await loadConfigFile({ cwd: dir })).config).toEqual({ profiles: { nosysv: { checkpoint: { external: ['sysvipc'] }, restore: { pinNs: '/run/p' } } } });
    writeFileSync(join(dir, '.crrc.yaml'), 'profiles:\n  nosysv:\n    checkpoint:\n      exclud: [sysvipc]\n    plugins: [x]\n  "bad name": {}\n');
    const message = await loadConfigFile({ cwd: dir }).catch((e: Error) => e.message);
    expect(message).toContain('at "profiles.nosysv.checkpoint": found unknown key "exclud"');
    expect(message).toContain('at "profiles.nosysv": found unknown key "plugins"');
    expect(message).toContain('at "profiles": found the key "bad name"; expected a profile name of letters, digits');
  });

  it('returns an empty config when there is no file', async () => {
    expect(await loadConfigFile({ cwd: fresh() })).toEqual({ config: {} });
  });
});

describe('resolveConfig', () => {
  it('lets later layers win key by key and remembers the source of each key', () => {
    const { config, sources } = resolveConfig([
      { source: 'default', config: DEFAULT_CONFIG },
      { source: 'file /x/.crrc', config: { checkpoint: { exclude: ['ipc-ns'] }, restore: { pinNs: '/run/a' } } },
      { source: 'flag --only', config: { checkpoint: { only: ['uts-ns'] } } },
    ]);
    expect(config.checkpoint).toEqual({ only: ['uts-ns'], exclude: ['ipc-ns'] });
    expect(sources).toMatchObject({
      'checkpoint.only': 'flag --only',
      'checkpoint.exclude': 'file /x/.crrc',
      'restore.pinNs': 'file /x/.crrc',
      'policy.default': 'default',
    });
  });
});

describe('resolveConfig, layer by layer', () => {
  it('a flag overrides the file, which overrides the default, and each key says who set it', () => {
    const file = { source: 'file /etc/.crrc', config: { checkpoint: { exclude: ['ipc-ns'] }, policy: { default: 'exclude' as const } } };
    const flag = { source: 'flag --exclude', config: { checkpoint: { exclude: ['uts-ns'] } } };
    const { config, sources } = resolveConfig([{ source: 'default', config: DEFAULT_CONFIG }, file, flag]);
    expect(config.checkpoint?.exclude).toEqual(['uts-ns']);
    expect(config.policy).toEqual({ default: 'exclude', rules: [] });
    expect(sources).toEqual({
      plugins: 'default',
      'checkpoint.only': 'default',
      'checkpoint.exclude': 'flag --exclude',
      'policy.default': 'file /etc/.crrc',
      'policy.rules': 'default',
    });
    // Order matters: the same layers the other way round give the file the last word.
    expect(resolveConfig([{ source: 'default', config: DEFAULT_CONFIG }, flag, file]).config.checkpoint?.exclude).toEqual(['ipc-ns']);
  });
});

describe('.crrc.example', () => {
  it('is a valid config file', async () => {
    fresh();
    writeFileSync(join(dir, '.crrc.yaml'), readFileSync(new URL('../../.crrc.example', import.meta.url)));
    const { config } = await loadConfigFile({ cwd: dir });
    expect(config.restore?.pinNs).toBe('/run/cr/pins');
  });
});
