import { spawn } from 'node:child_process';
import { existsSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, crAsync, restoreDetached, startFixture, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A unix stream listener at `path` that answers every "ping" with "pong N", N counting its connections. */
async function pongServer(path: string): Promise<Server> {
  let connections = 0;
  const server = createServer((socket) => {
    const n = ++connections;
    socket.on('data', () => socket.write(`pong ${n}`));
  });
  await new Promise<void>((ok) => server.listen(path, ok));
  cleanup.add(() => new Promise<void>((ok) => server.close(() => ok())));
  return server;
}

describe('unix sockets connected outside the checkpoint', () => {
  it('a client of a listener outside is refused at restore without --inherit-fd, naming the fd, and with it is connected to the listener again', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const path = join(dir, 'server.sock');
    await pongServer(path);
    const client = await startFixture(cleanup, 'python3', [join(REPO, 'test/fixtures/unix-client.py'), path], out);
    const fd = Number((await waitForLine(out, /^ready \d+/)).split(' ')[1]);
    await checkpointAndKill(client, join(dir, 'img'));

    const refused = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    expect(refused.status).toBe(5);
    expect(refused.stderr).toContain(`cannot restore fd ${fd} of PID ${client.pid}: a unix stream socket connected to ${path}, outside the checkpoint; give it with --inherit-fd ${fd}=PATH`);
    expect(existsSync(`/proc/${client.pid}`)).toBe(false);

    await restoreDetached(cleanup, join(dir, 'img'), client.pid!, ['--inherit-fd', `${fd}=${path}`]);
    process.kill(client.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^answer/)).toBe('answer pong 2');
  });

  it('a listener whose bound path was removed is bound there again with the mode it had; one with a connection not accepted yet is refused by name by --dry-run', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const path = join(dir, 'listener.sock');
    // A seqpacket listener: it accepts one connection on SIGUSR1, and answers its first message with that message reversed.
    const script = [
      'import os, signal, socket, sys',
      'signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})',
      's = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)',
      's.bind(sys.argv[1]); os.chmod(sys.argv[1], 0o640); s.listen(4)',
      "print('ready', flush=True)",
      'signal.sigwait({signal.SIGUSR1})',
      'c, _ = s.accept()',
      'c.send(c.recv(64)[::-1])',
      'signal.sigwait({signal.SIGUSR1})',
    ].join('\n');
    const server = await startFixture(cleanup, 'python3', ['-c', script, path], out);

    await checkpointAndKill(server, join(dir, 'img'));
    rmSync(path);
    await restoreDetached(cleanup, join(dir, 'img'), server.pid!);
    expect(statSync(path).mode & 0o7777).toBe(0o640);
    expect(statSync(path).isSocket()).toBe(true);

    // A connection waits in the accept queue until SIGUSR1: meanwhile, --dry-run names it.
    const asking = askSeqpacket(path, 'olleh');
    const pending = await waitForPending(server.pid!);
    expect(pending.status).toBe(7);
    expect(pending.stderr).toContain(`PID ${server.pid}: fd 3 is a unix seqpacket listener on ${path} with 1 connection(s) not accepted yet, which cr cannot checkpoint; checkpoint when they are accepted, or leave it out with --exclude unix-sockets:fd=3`);
    process.kill(server.pid!, 'SIGUSR1');
    expect(await asking).toBe('hello');
  });
});

/** Sends `text` through a new seqpacket connection to `path` and resolves with the answer. */
function askSeqpacket(path: string, text: string): Promise<string> {
  const script = 'import socket,sys\nc=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\nc.connect(sys.argv[1])\nc.send(sys.argv[2].encode())\nprint(c.recv(64).decode(), end="")';
  const client = cleanup.process(spawn('python3', ['-c', script, path, text], { stdio: ['ignore', 'pipe', 'inherit'] }));
  let answer = '';
  client.stdout!.on('data', (d: Buffer) => (answer += d.toString()));
  return new Promise((ok) => client.once('close', () => ok(answer)));
}

/** Runs --dry-run on `pid` until it reports the listener's pending connection (the client connects meanwhile). */
async function waitForPending(pid: number) {
  for (let tries = 0; ; tries++) {
    const r = await crAsync(['checkpoint', String(pid), '--dry-run']);
    if (r.stderr.includes('not accepted yet') || tries >= 50) return r;
    await new Promise((ok) => setTimeout(ok, 100));
  }
}
