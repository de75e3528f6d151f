import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { flush } from '@oclif/core/flush';
import { run } from '@oclif/core/run';
import type { Command, Interfaces } from '@oclif/core';
import { z } from 'zod';
import { RunLocally } from './service/job-state.js';

/**
 * Runs the cr command line; what goes wrong before a command runs (an unknown command) is
 * reported like the rest. `commands` are cr's own command classes by oclif id (`inspect:ps`).
 */
export async function main(argv: string[], root: string, commands: Record<string, Command.Class>): Promise<void> {
  // A command parses each schema a few times at most: zod's JIT, which compiles a fast path for
  // each schema it parses, costs more than it saves (the library leaves the choice to its user).
  z.config({ jitless: true });
  try {
    await run(argv, loadOptions(argv, root, commands));
    await flush();
  } catch (err) {
    if (err instanceof RunLocally) throw err;
    // Loaded only on failure: errors.js brings in @cr/core (koffi, tsyringe), which --version and --help do not need.
    const { reportOutsideCommand } = await import('./errors.js');
    reportOutsideCommand(err, argv);
  }
}

/**
 * How oclif loads its config for this command line. Finding and reading its plugins (help,
 * autocomplete) is a third of oclif's start-up, and cr's own commands do not need them (help on
 * one of them included): they are loaded unless the command line names a command of cr's own that
 * does not list them (a static `listsAllCommands` says it does). cr has no user-installed oclif
 * plugins to look for.
 */
export function loadOptions(argv: string[], root: string, commands: Record<string, Command.Class>): Interfaces.LoadOptions {
  const pjson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Interfaces.PJSON;
  const command = namedCommand(argv, commands);
  if (command && !('listsAllCommands' in command)) pjson.oclif = { ...pjson.oclif, plugins: [] };
  return { root, pjson, userPlugins: false };
}

/** The command of cr's own the command line names, by its longest run of leading words (`inspect ps DIR` → inspect:ps). */
function namedCommand(argv: string[], commands: Record<string, Command.Class>): Command.Class | undefined {
  const flag = argv.findIndex((a) => a.startsWith('-'));
  const words = flag === -1 ? argv : argv.slice(0, flag);
  for (let n = words.length; n > 0; n--) {
    const command = commands[words.slice(0, n).join(':')];
    if (command) return command;
  }
  return undefined;
}
