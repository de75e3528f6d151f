import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, cr, crJson, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('cr command line', () => {
  it('lists its commands in --help', () => {
    const help = cr(['--help']);
    expect(help.status).toBe(0);
    for (const command of ['checkpoint', 'restore', 'inspect', 'check', 'types', 'plugin new', 'config', 'unpin']) expect(help.stdout).toContain(command);
  });

  it('cr check finds every required kernel feature on this machine', () => {
    const report = crJson<{ ok: boolean; features: { feature: string; ok: boolean; required: boolean }[] }>(['check']);
    expect(report.features.filter((f) => f.required && !f.ok)).toEqual([]);
    expect(report.ok).toBe(true);
    expect(report.features.map((f) => f.feature)).toEqual(expect.arrayContaining(['ptrace seize/interrupt', 'clone3 with set_tid', 'pagemap', 'sysctl kernel.shm_next_id']));
  });

  it('cr types lists the built-in types in dependency order', () => {
    const { plugins } = crJson<{ plugins: { type: string; package: string }[] }>(['types']);
    expect(plugins).toEqual(expect.arrayContaining([
      expect.objectContaining({ type: 'uts-ns', package: '@cr/plugin-uts-ns' }),
      expect.objectContaining({ type: 'ipc-ns', package: '@cr/plugin-ipc-ns' }),
    ]));
    const types = plugins.map((p) => p.type);
    for (const child of types.filter((t) => t.startsWith('sysvipc-'))) expect(types.indexOf('ipc-ns'), child).toBeLessThan(types.indexOf(child));
  });

  it('cr config shows each value with its source: default, file, flag', () => {
    const dir = cleanup.dir(tempDir());
    writeFileSync(join(dir, '.crrc.yaml'), 'checkpoint:\n  exclude: [ipc-ns]\nrestore:\n  pinNs: /run/cr/pins\n');
    const { file, sources, config } = crJson<{ file: string; sources: Record<string, string>; config: { checkpoint: unknown } }>(['config', '--only', 'uts-ns'], dir);
    expect(file).toBe(join(dir, '.crrc.yaml'));
    expect(config.checkpoint).toEqual({ only: ['uts-ns'], exclude: ['ipc-ns'] });
    expect(sources).toMatchObject({
      'checkpoint.only': 'flag --only',
      'checkpoint.exclude': `file ${join(dir, '.crrc.yaml')}`,
      'restore.pinNs': `file ${join(dir, '.crrc.yaml')}`,
      'policy.default': 'default',
    });
  });

  it('cr config, as a table, names the source of each value', () => {
    const dir = cleanup.dir(tempDir());
    writeFileSync(join(dir, '.crrc'), '{"restore": {"pinNs": "/run/cr/x"}}');
    const r = cr(['config', '--exclude', 'ipc-ns'], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`config file: ${join(dir, '.crrc')}`);
    const row = (key: string) => r.stdout.split('\n').find((l) => l.includes(key)) ?? '';
    expect(row('restore.pinNs')).toContain(`file ${join(dir, '.crrc')}`);
    expect(row('checkpoint.exclude')).toContain('flag --exclude');
    expect(row('policy.default')).toContain('default');
  });

  it('resolves a relative plugin path from the directory of the config file given with --config', () => {
    const dir = cleanup.dir(tempDir());
    const plugin = join(REPO, 'test/fixtures/hello-plugin/index.js');
    mkdirSync(join(dir, 'conf'));
    writeFileSync(join(dir, 'conf', 'cr.json'), JSON.stringify({ plugins: [relative(join(dir, 'conf'), plugin)] }));
    const r = cr(['types', '--config', join(dir, 'conf', 'cr.json')], dir);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^hello\s+1\s+\.\.\/.*hello-plugin\/index\.js\s+target:process\s+the command name/m);
    // A plugin that cannot be found is a plugin error that names it.
    writeFileSync(join(dir, 'conf', 'bad.json'), JSON.stringify({ plugins: ['cr-plugin-nowhere'] }));
    const bad = cr(['types', '--config', join(dir, 'conf', 'bad.json')], dir);
    expect(bad.status).toBe(6);
    expect(bad.stderr).toContain('plugin cr-plugin-nowhere not found');
  });

  it('an invalid .crrc is one message naming the file and key path, exit code 3', () => {
    const dir = cleanup.dir(tempDir());
    writeFileSync(join(dir, '.crrc.json'), '{"checkpoint": {"exclude": "ipc-ns"}}');
    const r = cr(['checkpoint', String(process.pid), '-D', join(dir, 'img')], dir);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`invalid config in ${join(dir, '.crrc.json')}`);
    expect(r.stderr).toContain('at "checkpoint.exclude": found "ipc-ns"; expected array');
  });

  it('a type name in .crrc that no plugin provides is refused, naming the file, not silently ignored', () => {
    const dir = cleanup.dir(tempDir());
    writeFileSync(join(dir, '.crrc.yaml'), 'checkpoint:\n  exclude: [sysvipc-shn]\n');
    const r = cr(['checkpoint', String(process.pid), '-D', join(dir, 'img')], dir);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain(`file ${join(dir, '.crrc.yaml')}: unknown resource type "sysvipc-shn"`);
    expect(existsSync(join(dir, 'img'))).toBe(false);
  });

  it('loads a third-party plugin package named in the config, and uses it to checkpoint and restore', async () => {
    const dir = cleanup.dir(tempDir());
    writeFileSync(join(dir, '.crrc.json'), JSON.stringify({ plugins: [join(REPO, 'test/fixtures/hello-plugin/index.js')] }));
    const { plugins } = crJson<{ plugins: { type: string }[] }>(['types'], dir);
    expect(plugins.map((p) => p.type)).toContain('hello');

    const child = cleanup.process(spawn('sleep', ['1000']));
    const img = join(dir, 'img');
    expect(cr(['checkpoint', String(child.pid), '-D', img, '--only', 'hello'], dir).status).toBe(0);
    const { records } = crJson<{ records: Record<string, unknown> }>(['inspect', img], dir);
    expect(records).toEqual({ [`hello:${child.pid}`]: { comm: 'sleep' } });
    const log = join(dir, 'hello.log');
    const { restored } = crJson<{ restored: { key: string }[] }>(['restore', '-D', img], dir, { CR_HELLO_LOG: log });
    expect(restored).toEqual([{ key: `hello:${child.pid}`, type: 'hello', id: String(child.pid) }]);
    // The plugin's own restore() ran once, with the record its save() wrote.
    expect(readFileSync(log, 'utf8')).toBe(`restore hello:${child.pid} sleep\n`);

    // Without the plugin, the image cannot be restored, and the error says what to install.
    const bare = cr(['restore', '-D', img], cleanup.dir(tempDir()));
    expect(bare.status).toBe(6);
    expect(bare.stderr).toContain('no installed plugin handles "hello"');
  });
});
