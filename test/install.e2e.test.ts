import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { waitGone } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Runs a command as a user's shell would, with only PATH, HOME and npm's prefix and cache set. */
function run(command: string, args: string[], cwd: string, env: Record<string, string>) {
  const r = spawnSync(command, args, { cwd, encoding: 'utf8', env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...env } });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const WORKSPACES = ['core', 'schemas', 'api', 'plugin-kit', 'cli', ...readdirSync(join(REPO, 'plugins')).map((p) => `plugins/${p}`)];
/** The packages that are plugins (keyword cr-plugin), not what plugins share (@cr/sysvipc-base). */
const PLUGIN_PACKAGES = WORKSPACES.flatMap((w) => {
  const pkg = JSON.parse(readFileSync(join(REPO, w, 'package.json'), 'utf8')) as { name: string; keywords?: string[] };
  return pkg.keywords?.includes('cr-plugin') ? [pkg.name] : [];
});

describe('installing cr', () => {
  it('npm run install-cli puts cr on the PATH of npm prefix -g/bin, and uninstall-cli takes it away', () => {
    const prefix = cleanup.dir(tempDir('cr-prefix-'));
    const env = { npm_config_prefix: prefix };
    const installed = run('npm', ['run', 'install-cli'], REPO, env);
    expect(installed.status, installed.stderr).toBe(0);
    const path = `${join(prefix, 'bin')}:${process.env.PATH}`;
    // from a directory outside the clone, as a user would
    const version = run('cr', ['--version'], prefix, { PATH: path });
    expect(version.stdout).toMatch(/^@cr\/cli\/0\.1\.0 linux-x64 node-v/);
    expect(run('cr', ['types'], prefix, { PATH: path }).stdout).toMatch(/^TYPE +VERSION +PACKAGE/);
    expect(run('npm', ['run', 'uninstall-cli'], REPO, env).status).toBe(0);
    expect(existsSync(join(prefix, 'bin', 'cr'))).toBe(false);
  });

  it('npm pack of every package makes tarballs that install into another project, whose cr checkpoints and restores', async () => {
    const packs = cleanup.dir(tempDir('cr-packs-'));
    const packed = run('npm', ['pack', '--workspaces', '--pack-destination', packs], REPO, {});
    expect(packed.status, packed.stderr).toBe(0);
    const tarballs = readdirSync(packs).filter((f) => f.endsWith('.tgz'));
    expect(tarballs).toHaveLength(WORKSPACES.length);

    const project = cleanup.dir(tempDir('cr-project-'));
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'uses-cr', version: '1.0.0', private: true }));
    const installed = run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', ...tarballs.map((t) => join(packs, t))], project, {});
    expect(installed.status, installed.stderr).toBe(0);
    const cr = (...args: string[]) => run(join(project, 'node_modules', '.bin', 'cr'), args, project, {});
    // The tarball holds no code cache of the build's: the installed cr writes its own.
    const codeCache = join(project, 'node_modules', '@cr', 'cli', 'dist', 'bundle', 'code-cache');
    expect(existsSync(codeCache)).toBe(false);
    expect(cr('--version').stdout).toMatch(/^@cr\/cli\/0\.1\.0 /);
    const plugins = JSON.parse(cr('types', '--json').stdout) as { plugins: { package: string }[] };
    // A package may hold several types (pipes and fifos, shmem and memfd).
    expect([...new Set(plugins.plugins.map((p) => p.package))].sort()).toEqual([...PLUGIN_PACKAGES].sort());

    const sleeper = cleanup.process(spawn('sleep', ['1000'], { stdio: 'ignore' }));
    const pid = sleeper.pid!;
    const img = join(project, 'img');
    const checkpoint = cr('checkpoint', String(pid), '-D', img, '--kill');
    expect(checkpoint.stderr).toBe('');
    expect(checkpoint.status).toBe(0);
    await waitGone(pid);
    const restored = cr('restore', '-D', img, '--detach');
    cleanup.orphan(pid);
    expect(restored.stdout).toContain(`tasks:${pid} running as PID ${pid}`);
    expect(JSON.parse(cr('inspect', 'ps', img, '--json').stdout).processes[0].comm).toBe('sleep');
    expect(readdirSync(codeCache).map((f) => f.split('-')[0]).sort()).toEqual(['checkpoint', 'inspect', 'restore', 'types']);
  });
});
