import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, cr, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, lines, startFixture, waitFor, waitGone } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());
const run = promisify(execFile);
const filterOf = (pid: number) => parseInt(readFileSync(`/proc/${pid}/coredump_filter`, 'utf8'), 16);

describe('the plugin kit: from cr plugin new to a plugin cr loads', () => {
  it('scaffolds a package whose own test passes, and which cr loads from .crrc with its options checked by its schema', async () => {
    const work = cleanup.dir(tempDir('cr-kit-e2e-'));
    const made = cr(['plugin', 'new', 'cr-plugin-coredump-filter'], work);
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    expect(made.stdout).toContain('resource type coredump-filter');
    const pkg = join(work, 'cr-plugin-coredump-filter');
    const manifest = JSON.parse(readFileSync(join(pkg, 'package.json'), 'utf8'));
    expect(manifest.devDependencies['@cr/core']).toBe(`file:${join(REPO, 'core')}`);

    // What the README of the package and docs/plugins.md tell its author to run.
    await run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: pkg });
    const tested = await run('npm', ['test'], { cwd: pkg });
    expect(tested.stdout).toMatch(/^# pass 2$/m);
    expect(tested.stdout).toMatch(/^# fail 0$/m);

    // A bad option is refused by the plugin's own schema, naming the key path (exit 3).
    writeFileSync(join(work, '.crrc.json'), JSON.stringify({ plugins: ['./cr-plugin-coredump-filter'], pluginOptions: { 'coredump-filter': { override: 'all' } } }));
    const bad = cr(['types'], work);
    expect(bad.stderr).toBe(
      `cr: invalid options for plugin ./cr-plugin-coredump-filter (file ${join(work, '.crrc.json')}):\n  at "pluginOptions.coredump-filter.override": found "all"; expected number, received string\n`,
    );
    expect(bad.status).toBe(3);

    writeFileSync(join(work, '.crrc.json'), JSON.stringify({ plugins: ['./cr-plugin-coredump-filter'], pluginOptions: { 'coredump-filter': { override: 0x31 } } }));
    expect(cr(['types'], work).stdout).toMatch(/^coredump-filter +1 +\.\/cr-plugin-coredump-filter +tasks /m);

    // cr checkpoints and restores a C program with it: the image holds the filter, the restored program has the option's.
    const counter = compileFixture('counter', work);
    const out = join(work, 'counter.out');
    const child = await startFixture(cleanup, counter, [], out);
    const pid = child.pid!;
    writeFileSync(`/proc/${pid}/coredump_filter`, '0x7');
    const img = join(work, 'img');
    const exited = once(child, 'exit');
    const saved = await crAsync(['checkpoint', String(pid), '-D', img, '--kill'], { cwd: work });
    expect(saved.stderr).toBe('');
    expect(saved.stdout).toContain(`coredump-filter:${pid}`);
    await exited;
    const show = cr(['inspect', 'show', img, `coredump-filter:${pid}`, '--json'], work);
    expect(JSON.parse(show.stdout).record).toEqual({ filter: 7 });
    await waitGone(pid);
    const before = lines(out).length;
    const restored = await crAsync(['restore', '-D', img, '--detach'], { cwd: work });
    cleanup.orphan(pid);
    expect(restored.stderr).toBe('');
    expect(restored.stdout).toContain(`coredump-filter:${pid}`);
    expect(filterOf(pid)).toBe(0x31);
    await waitFor('the restored counter to count on', () => (lines(out).length > before + 3 ? true : undefined));
  });

  it('cr plugin new refuses a directory that is not empty and names that are not a package or a type, before writing anything', () => {
    const work = cleanup.dir(tempDir('cr-kit-e2e-'));
    mkdirSync(join(work, 'cr-plugin-taken'));
    writeFileSync(join(work, 'cr-plugin-taken', 'notes'), '');
    const taken = cr(['plugin', 'new', 'cr-plugin-taken'], work);
    expect(taken.stderr).toBe(`cr: plugin new: ${join(work, 'cr-plugin-taken')} exists and is not empty; choose a new directory\n`);
    expect(taken.status).toBe(2);
    const badName = cr(['plugin', 'new', 'My_Plugin'], work);
    expect(badName.stderr).toMatch(/^cr: plugin new: "My_Plugin" is not an npm package name/);
    expect(badName.status).toBe(2);
    const badType = cr(['plugin', 'new', 'cr-plugin-x', '--type', 'Not-A-Type'], work);
    expect(badType.stderr).toMatch(/^cr: plugin new: "Not-A-Type" is not a resource type name/);
    expect(badType.status).toBe(2);
    expect(readdirSync(work, { recursive: true })).toEqual(['cr-plugin-taken', 'cr-plugin-taken/notes']);
  });
});
