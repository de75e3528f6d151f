import { EventEmitter } from 'node:events';

/**
 * Thrown by a command running in the cr service that must run in the caller's own process
 * instead (it reads the caller's stdin, or waits for what it restores): the service tells the
 * caller to run it itself. A command throws it before it has done anything.
 */
export class RunLocally extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'RunLocally';
  }
}

/** Signals the caller of the running job received (SIGINT, SIGTERM, SIGHUP), forwarded by the service. */
const forwarded = new EventEmitter();
let active = false;

/** Whether a command is running in the cr service, for a caller elsewhere, rather than in cr's own process. */
export function inServiceJob(): boolean {
  return active;
}

/** Marks the start and end of a job in the service (only the service calls it). */
export function setServiceJob(running: boolean): void {
  active = running;
  if (!running) forwarded.removeAllListeners();
}

/** Hands the running job a signal its caller received, as if cr had received it. */
export function forwardSignal(name: NodeJS.Signals): void {
  forwarded.emit('signal', name);
}

/** Calls `listener` with each signal forwarded to the running job; returns what stops it. */
export function onForwardedSignal(listener: (name: NodeJS.Signals) => void): () => void {
  forwarded.on('signal', listener);
  return () => forwarded.off('signal', listener);
}
