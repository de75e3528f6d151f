import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, cr, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** cr's own commands, from its build (inspect/ps.js is "inspect ps"): each must be listed and documented. */
const ALL_COMMANDS = readdirSync(join(REPO, 'cli', 'dist', 'commands'), { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.js'))
  .map((f) => f.replace(/\.js$/, '').split('/').join(' '));
const COMMANDS = ALL_COMMANDS.filter((c) => !c.includes(' '));

describe('help', () => {
  it.each(ALL_COMMANDS)('cr help %s, its --help and -h print the same help, exit 0', (command) => {
    const words = command.split(' ');
    const help = cr(['help', ...words]);
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toContain(`$ cr ${command}`);
    expect(cr([...words, '--help']).stdout).toBe(help.stdout);
    expect(cr([...words, '-h']).stdout).toBe(help.stdout);
  });

  it('the top-level help and description list every command', () => {
    const top = cr(['-h'], REPO, { OCLIF_COLUMNS: '200' });
    expect(top.status).toBe(0);
    const [description] = top.stdout.split('\n');
    for (const command of [...COMMANDS, 'help', 'autocomplete']) {
      expect(top.stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
      expect(description).toContain(command);
    }
    const inspect = cr(['help', 'inspect'], REPO, { OCLIF_COLUMNS: '200' }).stdout;
    for (const command of ALL_COMMANDS.filter((c) => c.startsWith('inspect '))) {
      expect(inspect).toMatch(new RegExp(`^  ${command} `, 'm'));
      expect(description).toContain(command.split(' ')[1]);
    }
  });

  // oclif wraps a flag's description put below its name to the width, then indents it by 6
  it.each(ALL_COMMANDS)('%s: help wraps to the terminal width: at 60 columns nothing below the summary is wider than 66, at 300 descriptions are one line', (command) => {
    const narrow = cr([...command.split(' '), '--help'], REPO, { OCLIF_COLUMNS: '60' }).stdout;
    const long = narrow.split('\n').slice(1).filter((line) => line.length > 66 && !/^\s+\$ cr /.test(line));
    expect(long, command).toEqual([]);
    const wide = cr([...command.split(' '), '--help'], REPO, { OCLIF_COLUMNS: '300' }).stdout;
    const section = wide.slice(wide.indexOf('DESCRIPTION\n') + 'DESCRIPTION\n'.length);
    const description = section.slice(0, section.search(/\n\n[A-Z]+\n|$/)).split('\n');
    expect(description.filter((line) => line !== '').length, command).toBeGreaterThan(1);
    for (const line of description) expect(line.length, `${command}: ${line}`).toBeLessThanOrEqual(300);
    // one paragraph of the source is one line: no hard-wrapped text in the command sources
    expect(description.every((line) => line === '' || line.length > 100 || !/[a-z,]$/.test(line)), `${command}:\n${description.join('\n')}`).toBe(true);
  });

  it("checkpoint's usage lines say which flags exclude which", () => {
    const usage = cr(['checkpoint', '--help'], REPO, { OCLIF_COLUMNS: '300' }).stdout;
    expect(usage).toContain('$ cr checkpoint PID (-D DIR | --stream) [--no-tree] [--pre-copy[=N]] [--parent IMG] [--compress zstd|lz4] [--kill]');
    expect(usage).toContain('$ cr checkpoint --ipc-ns TARGET (-D DIR | --stream) [--compress zstd|lz4]');
    expect(usage).toContain('$ cr checkpoint (PID | --ipc-ns TARGET) --dry-run');
    expect(usage).not.toContain('--kill | --dry-run');
  });

  it('cr plugins, the old name of cr types, still works with a warning, and is not listed', () => {
    const old = cr(['plugins', '--json']);
    expect(old.status).toBe(0);
    expect(old.stderr).toBe('cr: warning: The "plugins" command has been deprecated. Use "types" instead.\n');
    const types = JSON.parse(cr(['types', '--json']).stdout) as { plugins: unknown[]; warnings: string[] };
    expect(JSON.parse(old.stdout)).toEqual({ ...types, warnings: ['The "plugins" command has been deprecated. Use "types" instead.'] });
    expect(cr(['-h'], REPO, { OCLIF_COLUMNS: '200' }).stdout).not.toMatch(/^ {2}plugins /m);
  });

  it('an unknown help topic is one cr: line, exit 2', () => {
    const r = cr(['help', 'frob']);
    expect(r.stderr).toBe('cr: unknown command frob; see cr --help\n');
    expect(r.status).toBe(2);
  });

  it("a usage error of a topic's command names it as it is typed", () => {
    const r = cr(['inspect', 'encode']);
    expect(r.stderr).toBe('cr: inspect encode: missing argument FILE (The document, or - for standard input); see cr inspect encode --help\n');
    expect(r.status).toBe(2);
  });
});

describe('autocomplete', () => {
  it('bash: the setup script cr prints completes commands and flags', () => {
    const home = cleanup.dir(tempDir());
    const env = { HOME: home, XDG_CACHE_HOME: join(home, '.cache') };
    const setup = cr(['autocomplete', 'script', 'bash'], REPO, env);
    expect(setup.status, setup.stderr).toBe(0);
    const complete = (words: string) =>
      spawnSync('bash', ['-c', `${setup.stdout}\nCOMP_WORDS=(${words}); COMP_CWORD=$((\${#COMP_WORDS[@]}-1)); _cr_autocomplete; echo "\${COMPREPLY[@]}"`], {
        encoding: 'utf8',
        env: { ...process.env, ...env },
      }).stdout.trim();
    expect(cr(['autocomplete', 'bash'], REPO, env).status).toBe(0);
    expect(complete('cr chec').split(' ').sort()).toEqual(['check', 'checkpoint']);
    expect(complete('cr checkpoint --ki')).toBe('--kill');
  });

  it('zsh: the completion function defines _cr', () => {
    const home = cleanup.dir(tempDir());
    const env = { HOME: home, XDG_CACHE_HOME: join(home, '.cache') };
    expect(cr(['autocomplete', 'zsh'], REPO, env).status).toBe(0);
    const r = spawnSync('zsh', ['-c', `autoload -U compinit; compinit -u -D; ${cr(['autocomplete', 'script', 'zsh'], REPO, env).stdout}; whence -w _cr`], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
    });
    expect(r.stdout, r.stderr).toContain('_cr: function');
  });

  it('fish: completes commands, subcommands and flags, with descriptions', () => {
    const script = cr(['autocomplete', 'fish']);
    expect(script.status, script.stderr).toBe(0);
    const complete = (line: string) =>
      spawnSync('fish', ['--no-config', '-c', `${script.stdout}\ncomplete -C '${line}'`], { encoding: 'utf8' });
    const top = complete('cr chec');
    expect(top.stderr).toBe('');
    expect(top.stdout).toBe("check\tCheck that this kernel has what cr needs\ncheckpoint\tSave a process's resources, or an IPC namespace on its own, into an image\n");
    expect(complete('cr checkpoint 12 --ki').stdout).toMatch(/^--kill\tKill the process/);
    expect(complete('cr inspect ').stdout).toMatch(/^ps\tShow the saved processes as a tree\n/m);
    expect(complete('cr inspect img ').stdout).toBe('');
  });
});
