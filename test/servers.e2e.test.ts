import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, restoreDetached, waitFor } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A TCP port nobody listens on now. */
function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

/** redis-cli against `port`: its output, trimmed; it must succeed. */
function redis(port: number, args: string[], input?: string): string {
  const r = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', ...(input === undefined ? {} : { input }) });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return r.stdout.trim();
}

/** `count` SET commands in the protocol redis-cli --pipe sends as they are. */
function setCommands(count: number): string {
  const arg = (s: string) => `$${Buffer.byteLength(s)}\r\n${s}\r\n`;
  let text = '';
  for (let i = 0; i < count; i++) text += `*3\r\n${arg('SET')}${arg(`k${i}`)}${arg(`v${i}`)}`;
  return text;
}

describe('real servers', () => {
  it('redis-server with 100k keys written by redis-cli: checkpointed with --kill, restored, the same keys through the same port, and it takes writes', async () => {
    const dir = cleanup.dir(tempDir());
    const port = await freePort();
    const server = cleanup.process(
      spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }),
    );
    await waitFor('redis-server to answer', () => (spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout.trim() === 'PONG' ? true : undefined), 20_000);
    expect(redis(port, ['--pipe'], setCommands(100_000))).toContain('errors: 0, replies: 100000');
    expect(redis(port, ['DBSIZE'])).toBe('100000');

    const saved = await checkpointAndKill(server, join(dir, 'img'));
    // Its background threads, its epoll instance and its listening socket are in the image.
    expect(saved).toMatch(/epoll:\d+:\d+/);
    expect(saved).toMatch(/inet-sockets:\d+:\d+/);
    await restoreDetached(cleanup, join(dir, 'img'), server.pid!);

    expect(redis(port, ['DBSIZE'])).toBe('100000');
    expect(redis(port, ['GET', 'k77777'])).toBe('v77777');
    expect(redis(port, ['SET', 'after', 'restore'])).toBe('OK');
    expect(redis(port, ['GET', 'after'])).toBe('restore');
  });
});
