import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, type Interfaces } from '@oclif/core';
import { describe, expect, it } from 'vitest';
import { loadOptions } from '../src/main.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

class Plain extends Command {
  async run(): Promise<void> {}
}
class ListsAll extends Command {
  static readonly listsAllCommands = true;
  async run(): Promise<void> {}
}
const COMMANDS = { checkpoint: Plain, inspect: Plain, 'inspect:ps': Plain, 'autocomplete:fish': ListsAll };

const pluginsFor = (argv: string[]) => ((loadOptions(argv, ROOT, COMMANDS) as Interfaces.Options).pjson!.oclif.plugins ?? []).length > 0;

describe('loadOptions', () => {
  it("leaves oclif's plugins out for a command of cr's own, its help included", () => {
    expect(pluginsFor(['checkpoint', '12', '-D', 'img'])).toBe(false);
    expect(pluginsFor(['checkpoint', '--help'])).toBe(false);
    expect(pluginsFor(['inspect', 'ps', 'img'])).toBe(false);
    expect(pluginsFor(['inspect', 'img'])).toBe(false);
  });

  it("loads them for a command line that may name one of theirs, lists every command, or names none of cr's", () => {
    expect(pluginsFor(['help', 'checkpoint'])).toBe(true);
    expect(pluginsFor(['autocomplete', 'bash'])).toBe(true);
    expect(pluginsFor(['autocomplete', 'fish'])).toBe(true);
    expect(pluginsFor(['--help'])).toBe(true);
    expect(pluginsFor([])).toBe(true);
    expect(pluginsFor(['chekpoint', '12'])).toBe(true);
  });

  it("passes cr's package.json, so that oclif does not read it again, and looks for no user-installed plugins", () => {
    const options = loadOptions(['checkpoint', '12'], ROOT, COMMANDS) as Interfaces.Options;
    expect(options.pjson!.name).toBe('@cr/cli');
    expect(options.userPlugins).toBe(false);
    expect(options.root).toBe(ROOT);
  });
});
