import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { buildIdentity, INTERRUPT_SIGNALS, jsonLines, NO_SERVICE_ENV, serviceSocket, type Reply, type Request } from './endpoint.cjs';

/** The commands a cr service runs for its callers; the rest (help, plugin, autocomplete, service) always run here. */
const SERVED = new Set(['checkpoint', 'restore', 'check', 'inspect', 'types', 'advise', 'unpin', 'config']);
/** ExitCode.Failure and ExitCode.Interrupted of @cr/core, which this file does not load. */
const FAILURE = 1;
const INTERRUPTED = 130;
/**
 * How long a caller waits for the service to be ready to run its command before running it
 * itself: an idle service answers at once; one that does not is stuck (in a write to another
 * caller's full pipe, say) or stopped, and a command must not hang on it.
 */
const READY_TIMEOUT_MS = 1000;

/**
 * The socket of a cr service this command line may be handed to, or undefined to run it here:
 * only root's commands (the service runs as root and takes its caller's files), only commands it
 * serves, never help, and only a socket that root owns in a directory only root can change.
 */
export function serviceFor(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env[NO_SERVICE_ENV] || process.geteuid?.() !== 0 || !SERVED.has(argv[0] ?? '')) return undefined;
  if (argv.some((arg) => arg === '--help' || arg === '-h')) return undefined;
  const socket = serviceSocket(env);
  try {
    const file = lstatSync(socket);
    const dir = lstatSync(dirname(socket));
    const safe = file.isSocket() && file.uid === 0 && dir.isDirectory() && dir.uid === 0 && (dir.mode & 0o022) === 0;
    return safe ? socket : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Runs the command line in the cr service at `socket`, as if here: the service takes this
 * process's stdio, working directory, umask and environment, and the signals this process
 * receives are passed on. Resolves to the command's exit code, or to undefined when the service
 * is not there, is not ready within READY_TIMEOUT_MS, or asks for the command to run here
 * (nothing was done then: the service runs a command only once the caller says `go`).
 */
export function runThroughService(argv: string[], socket: string, root: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    let started = false;
    let settled = false;
    // node:net only now: a command with no service to hand it to does not load it.
    const { connect } = require('node:net') as typeof import('node:net');
    const conn = connect(socket);
    const send = (request: Request) => conn.write(`${JSON.stringify(request)}\n`);
    const forward = (name: NodeJS.Signals) => {
      if (started) {
        send({ type: 'signal', name });
        return;
      }
      finish(INTERRUPTED);
      process.stderr.write(`cr: interrupted by ${name} before the cr service started the command; nothing was done\n`);
    };
    const timer = setTimeout(() => finish(undefined), READY_TIMEOUT_MS);
    const finish = (code: number | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      for (const name of INTERRUPT_SIGNALS) process.off(name, forward);
      conn.destroy();
      resolve(code);
    };
    for (const name of INTERRUPT_SIGNALS) process.on(name, forward);
    conn.on('connect', () => {
      const env = Object.fromEntries(Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined));
      send({ type: 'run', argv, env, build: buildIdentity(root) });
    });
    conn.on(
      'data',
      jsonLines<Reply>((reply) => {
        if (settled) return;
        if (reply.type === 'ready') {
          clearTimeout(timer);
          started = true;
          send({ type: 'go' });
        } else if (reply.type === 'local') finish(undefined);
        else if (reply.type === 'exit') finish(reply.code);
      }),
    );
    conn.on('error', () => undefined);
    conn.on('close', () => {
      if (settled) return;
      if (started) process.stderr.write(`cr: the cr service at ${socket} ended during the command, which may not have finished; run it again (with ${NO_SERVICE_ENV}=1 to run it without the service)\n`);
      finish(started ? FAILURE : undefined);
    });
  });
}
