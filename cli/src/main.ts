import { flush, run } from '@oclif/core';
import { reportOutsideCommand } from './errors.js';

/** Runs the cr command line; what goes wrong before a command runs (an unknown command) is reported like the rest. */
export async function main(argv: string[], root: string): Promise<void> {
  try {
    await run(argv, root);
    await flush();
  } catch (err) {
    reportOutsideCommand(err, argv);
  }
}
