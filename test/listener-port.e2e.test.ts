import { once } from 'node:events';
import { createConnection } from 'node:net';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, crAsync, restoreDetached, startFixture, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function ask(port: number): Promise<string> {
  const socket = createConnection(port, '127.0.0.1');
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  await once(socket, 'end');
  return text.trim();
}

/** The IPv4 TCP sockets on local port `port` in TIME_WAIT (state 06 in /proc/net/tcp). */
function timeWait(port: number): number {
  const local = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8')
    .split('\n')
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f[1]?.endsWith(local) && f[3] === '06').length;
}

async function startServer(dir: string, args: string[] = []) {
  const out = join(dir, 'out.txt');
  const server = await startFixture(cleanup, 'python3', [join(REPO, 'test/fixtures/closing-server.py'), ...args], out);
  const [port, holder] = (await waitForLine(out, /^ready \d+/)).split(' ').slice(1).map(Number);
  if (holder !== undefined) cleanup.orphan(holder);
  for (let i = 1; i <= 3; i++) expect(await ask(port!)).toBe(`served ${i}`);
  expect(timeWait(port!)).toBeGreaterThan(0);
  return { server, port: port! };
}

describe('the port of a restored listener', () => {
  it('is reclaimed from the killed server\'s own connections in TIME_WAIT, which a listener without SO_REUSEADDR cannot share it with', async () => {
    const dir = cleanup.dir(tempDir());
    const { server, port } = await startServer(dir);
    await checkpointAndKill(server, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), server.pid!);
    expect(await ask(port)).toBe('served 4');
  });

  it('is not taken while a process holds a socket on it: the restore fails with EADDRINUSE and leaves the connections in TIME_WAIT alone', async () => {
    const dir = cleanup.dir(tempDir());
    const { server, port } = await startServer(dir, ['--holder']);
    // Another process holds the listener on once the server is killed.
    await checkpointAndKill(server, join(dir, 'img'));
    const waiting = timeWait(port);
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    cleanup.orphan(server.pid!);
    expect(r.stderr).toMatch(/bind\(.*127\.0\.0\.1:\d+\)\): EADDRINUSE/);
    expect(r.status).toBe(1);
    expect(existsSync(`/proc/${server.pid}`)).toBe(false);
    expect(timeWait(port)).toBe(waiting);
  });

  it('is not asked of an accepted connection its client reset: that socket names the port without holding it, and comes back unbound beside the listener', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const server = await startFixture(cleanup, 'python3', [join(REPO, 'test/fixtures/reset-kept.py')], out);
    const [port, bound] = (await waitForLine(out, /^ready \d+ \d+$/)).split(' ').slice(1).map(Number);
    expect(await ask(port!)).toBe(`reset ${port} bound ${bound}`);
    await checkpointAndKill(server, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), server.pid!);
    // The socket bound by the program keeps its port; the reset one is a socket bound to nothing.
    expect(await ask(port!)).toBe(`reset 0 bound ${bound}`);
  });
});
