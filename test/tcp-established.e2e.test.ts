import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, crAsync, lines, restoreDetached, startFixture, waitFor, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PAIR = join(REPO, 'test/fixtures/tcp-pair.py');
const CLIENT = join(REPO, 'test/fixtures/tcp-client.py');
/** nft, also where root's PATH may not reach it. */
const NFT = existsSync('/usr/sbin/nft') ? '/usr/sbin/nft' : 'nft';

/** The connection blocks (nftables tables cr-tcp-…) on connections to or from `port`. */
function blocksOn(port: number): string[] {
  const tables = execFileSync(NFT, ['list', 'tables'], { encoding: 'utf8' });
  return [...tables.matchAll(/^table inet (cr-tcp-\S+)$/gm)].map((m) => m[1]!).filter((name) => name.split('-').some((end) => end.endsWith(`.${port}`)));
}

/** Removes, after the test, any block a failed test left on connections of `port`. */
function liftBlocksAfter(port: number): void {
  cleanup.add(() => {
    for (const name of blocksOn(port)) spawnSync(NFT, ['delete', 'table', 'inet', name]);
  });
}

/** What happens to a socket of the test: every byte it receives, and any error, end or close. */
function watch(socket: Socket): { received: () => string; events: string[] } {
  let received = '';
  const events: string[] = [];
  socket.setEncoding('utf8');
  socket.on('data', (d: string) => (received += d));
  socket.on('error', (e: NodeJS.ErrnoException) => events.push(`error ${e.code}`));
  socket.on('end', () => events.push('end'));
  socket.on('close', () => events.push('close'));
  return { received: () => received, events };
}

const portOf = (line: string) => Number(/port=(\d+)/.exec(line)![1]);

describe('established TCP connections (--tcp-established)', () => {
  it('a connection the process holds both ends of, with unsent and unread bytes both ways, comes back whole after --kill and restore', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const pair = await startFixture(cleanup, 'python3', [PAIR], out);
    const ready = lines(out)[0]!;
    const port = portOf(ready);
    liftBlocksAfter(port);

    const saved = await checkpointAndKill(pair, join(dir, 'img'), ['--tcp-established']);
    expect(saved).toContain(`inet-sockets:${pair.pid}:4`);
    // Both ends are blocked until the restore has made them again.
    expect(blocksOn(port)).toHaveLength(2);
    const image = JSON.parse((await crAsync(['inspect', join(dir, 'img'), '--json'])).stdout) as { records: Record<string, { connection?: { sendQueue: number; unsent: number; receiveQueue: number } }> };
    const connections = Object.values(image.records).flatMap((r) => (r.connection ? [r.connection] : []));
    expect(connections).toHaveLength(2);
    // One end had bytes never sent (the other's window was closed), each had bytes not read yet.
    expect(connections.some((c) => c.unsent > 0)).toBe(true);
    expect(connections.every((c) => c.receiveQueue > 0)).toBe(true);

    await restoreDetached(cleanup, join(dir, 'img'), pair.pid!);
    expect(blocksOn(port)).toEqual([]);
    process.kill(pair.pid!, 'SIGUSR1');
    const sent = /sent=(\d+)/.exec(ready)![1];
    expect(await waitForLine(out, /^(ok|bad) /, 30_000)).toBe(`ok received=${sent} bad=0 reply=True ping/pong`);
  });

  it('a client whose server is outside the checkpoint keeps its connection and its options across --kill and restore; the server never sees a reset', async () => {
    const dir = cleanup.dir(tempDir());
    const server = createServer();
    cleanup.add(() => void server.close());
    const accepted = once(server, 'connection') as Promise<[Socket]>;
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const port = (server.address() as AddressInfo).port;
    liftBlocksAfter(port);
    const client = await startFixture(cleanup, 'python3', [CLIENT, String(port)], join(dir, 'out.txt'));
    const [socket] = await accepted;
    cleanup.add(() => void socket.destroy());
    const peer = watch(socket);
    socket.write('one\n');
    await waitFor('the first answer', () => (peer.received() === '1 one\n' ? true : undefined));

    await checkpointAndKill(client, join(dir, 'img'), ['--tcp-established']);
    // Sent while the client is gone: the block keeps it out, and the server's kernel sends it again.
    socket.write('two\n');
    await restoreDetached(cleanup, join(dir, 'img'), client.pid!);
    await waitFor('the restored client to answer what was sent while it was gone', () => (peer.received().endsWith('2 two\n') ? true : undefined), 30_000);
    socket.write('options\n');
    await waitFor('one more answer', () => (peer.received().endsWith('\n3 nodelay=1 keepalive=1 keepidle=77 usertimeout=12345\n') ? true : undefined), 10_000);
    expect(peer.received()).toBe('1 one\n2 two\n3 nodelay=1 keepalive=1 keepidle=77 usertimeout=12345\n');
    expect(peer.events).toEqual([]);
    expect(blocksOn(port)).toEqual([]);
  });

  it('redis-server keeps a client connected across --kill and restore: the same connection reads what it wrote before and writes again', async () => {
    const dir = cleanup.dir(tempDir());
    const probe = createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const port = (probe.address() as AddressInfo).port;
    await new Promise((ok) => probe.close(ok));
    liftBlocksAfter(port);
    const redis = cleanup.process(spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }));
    await waitFor('redis-server to answer', () => (spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout.trim() === 'PONG' ? true : undefined), 20_000);
    const socket = connect(port, '127.0.0.1');
    cleanup.add(() => void socket.destroy());
    await once(socket, 'connect');
    const client = watch(socket);
    const ask = async (command: string, reply: string) => {
      const before = client.received().length;
      socket.write(`${command}\r\n`);
      await waitFor(`redis to answer ${command}`, () => (client.received().length > before && client.received().endsWith(reply) ? true : undefined), 30_000);
    };
    await ask('SET held before', '+OK\r\n');

    const saved = await checkpointAndKill(redis, join(dir, 'img'), ['--tcp-established']);
    expect(saved).toMatch(/inet-sockets:\d+:\d+/);
    await restoreDetached(cleanup, join(dir, 'img'), redis.pid!);

    await ask('GET held', '$6\r\nbefore\r\n');
    await ask('SET held after', '+OK\r\n');
    expect(spawnSync('redis-cli', ['-p', String(port), 'GET', 'held'], { encoding: 'utf8' }).stdout.trim()).toBe('after');
    expect(client.events).toEqual([]);
    expect(blocksOn(port)).toEqual([]);
  });

  it('a checkpoint that fails after the freeze, or leaves the process running (the option set in a config file), lifts every block and leaves the connections working', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const pair = await startFixture(cleanup, 'python3', [PAIR, 'half-closed'], out);
    const port = portOf(lines(out)[0]!);
    liftBlocksAfter(port);

    const plain = await crAsync(['checkpoint', String(pair.pid), '-D', join(dir, 'plain')]);
    expect(plain.status).toBe(7);
    expect(plain.stderr).toMatch(/fd 4 is an established TCP connection \(127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+\); pass --tcp-established to save it/);

    // fd 6 is in CLOSE_WAIT, refused after the established ones were paused.
    const failed = await crAsync(['checkpoint', String(pair.pid), '-D', join(dir, 'failed'), '--tcp-established', '--kill']);
    expect(failed.status).toBe(7);
    expect(failed.stderr).toMatch(/fd 6 is a TCP connection in state CLOSE_WAIT .*only established connections, with --tcp-established/);
    expect(blocksOn(port)).toEqual([]);

    // The config key does what the flag does.
    const config = join(dir, 'crrc.json');
    writeFileSync(config, JSON.stringify({ pluginOptions: { 'inet-sockets': { tcpEstablished: true } } }), { mode: 0o600 });
    const kept = await crAsync(['checkpoint', String(pair.pid), '-D', join(dir, 'kept'), '--config', config, '--exclude', 'inet-sockets:fd=6']);
    expect(kept.stderr).toBe('');
    expect(kept.status).toBe(0);
    expect(blocksOn(port)).toEqual([]);

    process.kill(pair.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^(ok|bad) /, 30_000)).toMatch(/^ok /);
  });

  it('a cr killed with SIGKILL while the connections are blocked leaves no block behind: its watchdog lifts them, and the program carries on', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const pair = await startFixture(cleanup, 'python3', [PAIR], out);
    const port = portOf(lines(out)[0]!);
    liftBlocksAfter(port);

    const checkpoint = cleanup.process(spawn(process.execPath, [join(REPO, 'cli/bin/run.js'), 'checkpoint', String(pair.pid), '-D', join(dir, 'img'), '--tcp-established'], { stdio: 'ignore' }));
    const exited = once(checkpoint, 'exit');
    await waitFor('the connections to be blocked', () => (blocksOn(port).length > 0 ? true : undefined), 30_000);
    checkpoint.kill('SIGKILL');
    expect(await exited).toEqual([null, 'SIGKILL']);

    await waitFor('the blocks to be lifted', () => (blocksOn(port).length === 0 ? true : undefined), 10_000);
    await waitFor('the program to run on', () => (/^State:\s+[RS]/m.test(readFileSync(`/proc/${pair.pid}/status`, 'utf8')) ? true : undefined), 10_000);
    process.kill(pair.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^(ok|bad) /, 30_000)).toMatch(/^ok /);
  });
});
