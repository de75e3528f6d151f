import { flush, run } from '@oclif/core';

/** Runs the cr command line; what goes wrong before a command runs (an unknown command) is reported like the rest. */
export async function main(argv: string[], root: string): Promise<void> {
  try {
    await run(argv, root);
    await flush();
  } catch (err) {
    // Loaded only on failure: errors.js brings in @cr/core (koffi, tsyringe), which --version and --help do not need.
    const { reportOutsideCommand } = await import('./errors.js');
    reportOutsideCommand(err, argv);
  }
}
