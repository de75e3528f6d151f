import { InterruptedError } from '@cr/core';
import { INTERRUPT_SIGNALS } from './service/endpoint.cjs';
import { onForwardedSignal } from './service/job-state.js';

/**
 * Turns Ctrl-C, SIGTERM and SIGHUP into an abort of the command's work, so that cr lets its
 * targets go and removes what it wrote before it exits (with ExitCode.Interrupted), instead of
 * dying with targets stopped. A second signal while cr is undoing its work is ignored: cutting
 * the undo short would do the harm the first one is meant to avoid. In the cr service, the
 * signals are those its caller received, forwarded. Ctrl-Z (SIGTSTP) is put off until `stop`:
 * stopped at once, cr would keep its targets frozen for as long as it stays stopped. `stop`
 * removes the handlers, then stops cr if Ctrl-Z came meanwhile.
 */
export function abortOnSignals(what: string): { signal: AbortSignal; stop: () => void } {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) return;
    controller.abort(new InterruptedError(`${what} interrupted by ${name}; ${what === 'checkpoint' ? 'the target was let go and no image was written' : 'everything restored so far was removed'}`));
  };
  for (const name of INTERRUPT_SIGNALS) process.on(name, onSignal);
  const stopForwarded = onForwardedSignal(onSignal);
  let suspend = false;
  const onSuspend = () => (suspend = true);
  process.on('SIGTSTP', onSuspend);
  return {
    signal: controller.signal,
    stop: () => {
      for (const name of INTERRUPT_SIGNALS) process.off(name, onSignal);
      stopForwarded();
      process.off('SIGTSTP', onSuspend);
      // SIGSTOP, which the shell reports as it would Ctrl-Z's own stop; fg goes on from here.
      if (suspend) process.kill(process.pid, 'SIGSTOP');
    },
  };
}
