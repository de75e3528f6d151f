import { statSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The signals that interrupt a cr command (cr lets its targets go, removes what it wrote, exits
 * 130): those cr receives, those a caller of the service passes on, and those that stop the service.
 */
export const INTERRUPT_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

/** Names the cr service's socket, instead of DEFAULT_SERVICE_SOCKET. */
export const SERVICE_SOCKET_ENV = 'CR_SERVICE_SOCKET';
/** Set (to anything but an empty string), commands run in cr's own process even when a cr service runs. */
export const NO_SERVICE_ENV = 'CR_NO_SERVICE';
/** Where `cr service start` listens unless told otherwise: a root-only directory under /run. */
export const DEFAULT_SERVICE_SOCKET = '/run/cr/service.sock';

export function serviceSocket(env: NodeJS.ProcessEnv = process.env): string {
  return env[SERVICE_SOCKET_ENV] || DEFAULT_SERVICE_SOCKET;
}

/**
 * Which build of cr an install is: its bundle's path, inode, size and time of writing (to the
 * millisecond). A caller hands its command to a service of the same build only, so that an
 * upgrade is never answered by the code it replaced.
 */
export function buildIdentity(root: string): string {
  const bundle = join(root, 'dist', 'bundle', 'cr.cjs');
  const { ino, size, mtimeMs } = statSync(bundle);
  return `${bundle}:${ino}:${size}:${Math.trunc(mtimeMs)}`;
}

/** The service's descriptor on which it tells `cr service start` it listens (READY) or why it cannot. */
export const READY_FD = 3;
export const READY = 'ready';

/**
 * What a caller sends: one JSON line to run a command, `go` once the service is ready to, then
 * signal lines; or a lone control line.
 */
export type Request =
  | { type: 'run'; argv: string[]; env: Record<string, string>; build: string }
  | { type: 'go' }
  | { type: 'signal'; name: NodeJS.Signals }
  | { type: 'status' }
  | { type: 'stop' };

/**
 * What the service answers, a JSON line each: `ready` (it has taken the caller's place and runs
 * the command once the caller says `go`), `local` (the caller runs it itself; nothing was done),
 * `exit` once the command is over.
 */
export type Reply =
  | { type: 'local'; reason: string }
  | { type: 'ready' }
  | { type: 'exit'; code: number }
  | { type: 'status'; pid: number; build: string; since: string; served: number }
  | { type: 'stopping' };

/** Splits a stream's chunks into JSON lines, each parsed and handed to `take`. */
export function jsonLines<T>(take: (message: T) => void): (chunk: Buffer) => void {
  let pending = '';
  return (chunk) => {
    pending += chunk.toString('utf8');
    for (let end = pending.indexOf('\n'); end !== -1; end = pending.indexOf('\n')) {
      const line = pending.slice(0, end);
      pending = pending.slice(end + 1);
      if (line.trim() !== '') take(JSON.parse(line) as T);
    }
  };
}
