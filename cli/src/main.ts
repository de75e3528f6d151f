import { flush, run } from '@oclif/core';
import { z } from 'zod';

/** Runs the cr command line; what goes wrong before a command runs (an unknown command) is reported like the rest. */
export async function main(argv: string[], root: string): Promise<void> {
  // A command parses each schema a few times at most: zod's JIT, which compiles a fast path for
  // each schema it parses, costs more than it saves (the library leaves the choice to its user).
  z.config({ jitless: true });
  try {
    await run(argv, root);
    await flush();
  } catch (err) {
    // Loaded only on failure: errors.js brings in @cr/core (koffi, tsyringe), which --version and --help do not need.
    const { reportOutsideCommand } = await import('./errors.js');
    reportOutsideCommand(err, argv);
  }
}
