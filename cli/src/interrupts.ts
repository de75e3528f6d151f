import { InterruptedError } from '@cr/core';
import { onForwardedSignal } from './service/job-state.js';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/**
 * Turns Ctrl-C, SIGTERM and SIGHUP into an abort of the command's work, so that cr lets its
 * targets go and removes what it wrote before it exits (with ExitCode.Interrupted), instead of
 * dying with targets stopped. A second signal while cr is undoing its work is ignored: cutting
 * the undo short would do the harm the first one is meant to avoid. In the cr service, the
 * signals are those its caller received, forwarded. `stop` removes the handlers.
 */
export function abortOnSignals(what: string): { signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    controller.abort(new InterruptedError(`${what} interrupted by ${name}; ${what === 'checkpoint' ? 'the target was let go and no image was written' : 'everything restored so far was removed'}`));
  };
  for (const name of SIGNALS) process.on(name, onSignal);
  const stopForwarded = onForwardedSignal(onSignal);
  return {
    signal: controller.signal,
    stop: () => {
      for (const name of SIGNALS) process.off(name, onSignal);
      stopForwarded();
    },
  };
}
