import { chmodSync, closeSync, lstatSync, mkdirSync, openSync, unlinkSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { CrError, ExitCode, Kernel } from '@cr/core';
import { setCaller, type Logger } from '@cr/core/engine';
import { buildIdentity, INTERRUPT_SIGNALS, jsonLines, type Reply, type Request } from './endpoint.cjs';
import { callerRefusal, enterCaller, standingOf } from './caller.js';
import { serviceStatus } from './ask.js';
import { forwardSignal, RunLocally, setServiceJob } from './job-state.js';

export interface ServiceOptions {
  socket: string;
  /** The CLI's install, whose build callers must match. */
  root: string;
  /** Runs one command line, as bin/run.js would. */
  run(argv: string[]): Promise<void>;
  logger: Logger;
  /** Called once the socket accepts callers. */
  ready(): void;
}

type RunRequest = Extract<Request, { type: 'run' }>;
/** How long the service waits for a caller's `go` (which a live caller sends at once). */
const GO_TIMEOUT_MS = 10_000;

/**
 * The cr service (`cr service start`): cr kept running, with its code compiled and its plugins
 * loaded, running the commands callers hand it (bin/run.js → client.cts) one at a time, each in
 * its caller's place (enterCaller). Resolves once stopped: by a `stop` request, or by SIGTERM,
 * SIGINT or SIGHUP, which also interrupt the command running then as they would interrupt cr.
 */
export async function serve(options: ServiceOptions): Promise<void> {
  const kernel = new Kernel();
  const build = buildIdentity(options.root);
  const own = standingOf(kernel, process.pid);
  settleOwnStdio(kernel);
  await claimSocket(options.socket);
  const since = new Date().toISOString();
  let served = 0;
  let current: Promise<void> | undefined;
  let stopping = false;
  const connections = new Set<Socket>();
  const server: Server = createServer((conn) => {
    connections.add(conn);
    conn.on('close', () => connections.delete(conn));
    accept(conn);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.socket, () => resolve());
  });
  chmodSync(options.socket, 0o600);
  options.logger.info({ socket: options.socket }, `cr service listening on ${options.socket}`);

  const reapExited = () => {
    // Not while a command runs: it may be waiting for a child of its own.
    if (current) return;
    for (const child of kernel.procfs.children(process.pid)) kernel.reapIfExited(child);
  };
  process.on('SIGCHLD', reapExited);
  let stopped!: () => void;
  const done = new Promise<void>((resolve) => (stopped = resolve));
  /** Takes no more commands, and lets go of everything once the one running is over. */
  const stop = () => {
    if (stopping) return;
    stopping = true;
    server.close();
    void Promise.resolve(current).then(() => {
      for (const name of INTERRUPT_SIGNALS) process.off(name, stop);
      process.off('SIGCHLD', reapExited);
      // Ended, so that answers already written reach their caller; cut a second later.
      for (const conn of connections) {
        conn.end();
        setTimeout(() => conn.destroy(), 1000);
      }
      options.logger.info({ served }, `cr service stopped after ${served} command(s)`);
      stopped();
    });
  };
  for (const name of INTERRUPT_SIGNALS) process.on(name, stop);
  options.ready();
  await done;

  function accept(conn: Socket): void {
    let jobRunning = false;
    let asked = false;
    /** Settles once the caller says `go` (true), or goes away or says nothing in time (false). */
    let onGo: ((go: boolean) => void) | undefined;
    const reply = (message: Reply) => {
      if (!conn.destroyed) conn.write(`${JSON.stringify(message)}\n`);
    };
    const take = jsonLines<Request>((request) => {
      if (request.type === 'status') reply({ type: 'status', pid: process.pid, build, since, served });
      else if (request.type === 'stop') {
        reply({ type: 'stopping' });
        stop();
      } else if (request.type === 'go') {
        onGo?.(true);
      } else if (request.type === 'signal') {
        if (jobRunning) forwardSignal(request.name);
      } else if (request.type === 'run') {
        // One command a connection: any answer to a second would be taken for the first's.
        if (asked) return;
        asked = true;
        // One command at a time (each takes the service's stdio, directory, environment): a caller
        // that comes meanwhile runs its command itself, at once, as it would without a service.
        if (current) return reply({ type: 'local', reason: 'the service is running another command' });
        current = runJob(request)
          .catch((err: Error) => options.logger.error({ err }, `a command for a caller failed outside cr's own reporting: ${err.message}`))
          .finally(() => {
            current = undefined;
            reapExited();
          });
      }
    });
    conn.on('data', (chunk) => {
      try {
        take(chunk);
      } catch {
        conn.destroy();
      }
    });
    conn.on('error', () => undefined);
    conn.on('close', () => onGo?.(false));

    /** Waits for the caller's `go` after `ready`: a caller that gave up meanwhile runs its command itself. */
    function callerSaysGo(): Promise<boolean> {
      return new Promise((resolve) => {
        const timer = setTimeout(() => onGo?.(false), GO_TIMEOUT_MS);
        onGo = (go) => {
          clearTimeout(timer);
          onGo = undefined;
          resolve(go && !conn.destroyed);
        };
      });
    }

    async function runJob(request: RunRequest): Promise<void> {
      if (conn.destroyed || stopping) return reply({ type: 'local', reason: 'the service is stopping' });
      if (request.build !== build) return reply({ type: 'local', reason: 'the service runs another build of cr' });
      let leave: () => void;
      let caller: number;
      try {
        const peer = kernel.sockets.peerCredentials(socketFd(conn), 'the caller of the cr service');
        caller = peer.pid;
        const refusal = callerRefusal(peer.uid, standingOf(kernel, peer.pid), own);
        if (refusal !== undefined) return reply({ type: 'local', reason: refusal });
        leave = enterCaller(kernel, peer.pid, request.env);
      } catch (err) {
        return reply({ type: 'local', reason: (err as Error).message });
      }
      reply({ type: 'ready' });
      if (!(await callerSaysGo())) {
        leave();
        conn.destroy();
        return;
      }
      const callerGone = () => forwardSignal('SIGHUP');
      conn.on('close', callerGone);
      jobRunning = true;
      setServiceJob(true);
      setCaller(caller);
      const began = performance.now();
      let outcome: Reply;
      try {
        await options.run(request.argv);
        outcome = { type: 'exit', code: Number(process.exitCode ?? 0) };
      } catch (err) {
        if (err instanceof RunLocally) outcome = { type: 'local', reason: err.message };
        else {
          outcome = { type: 'exit', code: ExitCode.Failure };
          tell(`cr: ${(err as Error).message}\n`);
        }
      } finally {
        process.exitCode = undefined;
        setCaller(undefined);
        setServiceJob(false);
        jobRunning = false;
        conn.off('close', callerGone);
        leave();
      }
      if (outcome.type === 'exit') served++;
      options.logger.info({ caller, argv: request.argv, outcome, ms: Math.round(performance.now() - began) }, `cr ${request.argv.join(' ')} for PID ${caller}: ${outcome.type === 'exit' ? `exit ${outcome.code}` : `handed back (${outcome.reason})`}`);
      reply(outcome);
    }
  }
}

/**
 * The service's own stdin, stdout and stderr become /dev/null, and node's stream objects for them
 * are made now: each command then writes to what its caller's descriptors are while it runs
 * (enterCaller), through streams that write to the descriptor whatever it is.
 */
function settleOwnStdio(kernel: Kernel): void {
  const devNull = openSync('/dev/null', 'r+');
  for (const fd of [0, 1, 2]) kernel.replaceFd(devNull, fd);
  closeSync(devNull);
  void process.stdin;
  void process.stdout;
  void process.stderr;
}

/**
 * Makes the socket's directory (root's alone) and clears a socket left by a service that is
 * gone. Refuses a directory others can write to, and a socket a running service answers on.
 */
async function claimSocket(socket: string): Promise<void> {
  const dir = dirname(socket);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const info = lstatSync(dir);
  if (!info.isDirectory() || info.uid !== 0 || (info.mode & 0o022) !== 0) {
    throw new CrError(`--socket ${socket}: its directory ${dir} must belong to root and be writable by no one else; choose another place`, ExitCode.Usage);
  }
  let present: boolean;
  try {
    present = lstatSync(socket).isSocket();
  } catch {
    return;
  }
  if (!present) throw new CrError(`--socket ${socket}: something that is not a socket is there; remove it or choose another place`, ExitCode.Usage);
  const running = await serviceStatus(socket);
  if (running) throw new CrError(`a cr service already runs at ${socket} (PID ${running.pid}); stop it with cr service stop`, ExitCode.Usage);
  unlinkSync(socket);
}

/** Writes to the caller's stderr, if it can still be written to (a caller that was killed may have taken its reader with it). */
function tell(text: string): void {
  try {
    writeSync(2, text);
  } catch {
    // Nobody to tell.
  }
}

/** The descriptor of a connection node accepted (node exposes it only on its handle). */
function socketFd(conn: Socket): number {
  const fd = (conn as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the connection has no descriptor');
  return fd;
}
