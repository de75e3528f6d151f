import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, statSync } from 'node:fs';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, restoreDetached, startFixture, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
const fixture = (name: string) => join(bin, name);
beforeAll(() => {
  bin = tempDir('cr-sockets-bin-');
  for (const name of ['unixsockets', 'udpserver']) compileFixture(name, bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** Connects a stream socket to a unix path and returns all it is sent. */
function askPath(path: string): Promise<string> {
  return new Promise((ok, fail) => {
    let answer = '';
    const socket = connect({ path });
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('end', () => ok(answer));
    socket.on('error', fail);
  });
}

/** One message from a seqpacket socket connected to an abstract unix name (node has no seqpacket sockets). */
function askSeqpacket(abstract: string): string {
  const script = `import socket,sys\ns=socket.socket(socket.AF_UNIX,socket.SOCK_SEQPACKET)\ns.connect('\\0'+sys.argv[1])\nsys.stdout.write(s.recv(64).decode())`;
  const r = spawnSync('python3', ['-c', script, abstract], { encoding: 'utf8', timeout: 10_000 });
  expect(r.stderr).toBe('');
  return r.stdout;
}

/** Sends one datagram to 127.0.0.1:port and returns the answer. */
function askUdp(port: number, text: string): Promise<string> {
  return new Promise((ok, fail) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => (socket.close(), fail(new Error(`no answer from UDP port ${port}`))), 10_000);
    socket.on('message', (m) => (clearTimeout(timer), socket.close(), ok(m.toString())));
    socket.send(text, port, '127.0.0.1');
  });
}

describe('unix sockets, checkpointed with --kill and restored', () => {
  it('socketpairs keep the messages queued both ways; listeners on a path and an abstract name accept again; a named datagram socket keeps its messages and its client is connected to it again', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const path = join(dir, 'server.sock');
    const abstract = `cr-test-${process.pid}-${Date.now()}`;
    const child = await startFixture(cleanup, fixture('unixsockets'), [path, abstract], out);
    expect(await askPath(path)).toBe('hello 1\n');
    // An owner and a mode of its own (with write bits a umask of 022 would drop), which restore
    // gives the file it binds again.
    chownSync(path, 4321, 8765);
    chmodSync(path, 0o763);
    const saved = await checkpointAndKill(child, join(dir, 'img'));
    expect(saved).toMatch(/unix-sockets:\d+:3, unix-sockets:\d+:5, unix-sockets:\d+:7, unix-sockets:\d+:8, unix-sockets:\d+:9, unix-sockets:\d+:10/);
    // The killed program's socket file is left behind; restore binds the path again.
    expect(existsSync(path)).toBe(true);
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(statSync(path)).toMatchObject({ mode: 0o140763, uid: 4321, gid: 8765 });
    process.kill(child.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^four=/)).toBe('four=to-four three=to-three! dgram=one,two named=q1,q2,after');
    expect(await askPath(path)).toBe('hello 2\n');
    expect(askSeqpacket(abstract)).toBe('hello 3\n');
  });
});

describe('UDP sockets, checkpointed with --kill and restored', () => {
  it('a server receives and answers on the same port, and a socket connected to it sends to it again', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('udpserver'), [], out);
    const port = Number((await waitForLine(out, /^ready \d+/)).split(' ')[1]);
    expect(await askUdp(port, 'before')).toBe('got 1 before');
    const saved = await checkpointAndKill(child, join(dir, 'img'));
    expect(saved).toMatch(/inet-sockets:\d+:3, inet-sockets:\d+:4/);
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(await askUdp(port, 'after')).toBe('got 2 after');
    // The signal only counts when it interrupts recvfrom: it is sent again until it has.
    const poke = setInterval(() => process.kill(child.pid!, 'SIGUSR1'), 300);
    try {
      process.kill(child.pid!, 'SIGUSR1');
      expect(await waitForLine(out, /^got 3/)).toBe('got 3 self');
    } finally {
      clearInterval(poke);
    }
  });
});
