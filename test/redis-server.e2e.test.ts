import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, restoreDetached, waitFor } from './helpers/processes.js';
import { checkpointWhileLoaded, freePort, runClient } from './helpers/servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

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

/** A redis-server on a free port of 127.0.0.1, answering; killed by cleanup. */
async function startRedis(dir: string) {
  const port = await freePort();
  const server = cleanup.process(
    spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' }),
  );
  await waitFor('redis-server to answer', () => (spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout.trim() === 'PONG' ? true : undefined), 20_000);
  return { server, port };
}

describe('redis-server', () => {
  it('with 100k keys written by redis-cli: checkpointed with --kill, restored, the same keys through the same port, and it takes writes', async () => {
    const dir = cleanup.dir(tempDir());
    const { server, port } = await startRedis(dir);
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

  it('checkpointed while redis-cli runs INCR after INCR, each a new connection: none fails, it counts on, and the image restores with the count it had', async () => {
    const dir = cleanup.dir(tempDir());
    const { server, port } = await startRedis(dir);
    const { image, answers, before, during } = await checkpointWhileLoaded(cleanup, server.pid!, join(dir, 'img'), async () => {
      const r = await runClient('redis-cli', ['-p', String(port), 'INCR', 'hits']);
      if (r.status !== 0 || r.stderr !== '' || !/^\d+$/.test(r.stdout)) throw new Error(`redis-cli exit ${r.status}: ${r.stderr}${r.stdout}`);
      return Number(r.stdout);
    });
    expect(answers).toEqual(answers.map((_, i) => i + 1));
    expect(redis(port, ['GET', 'hits'])).toBe(String(answers.length));

    const exited = new Promise((ok) => server.once('exit', ok));
    server.kill('SIGKILL');
    await exited;
    await restoreDetached(cleanup, image, server.pid!);
    const restored = Number(redis(port, ['GET', 'hits']));
    expect(restored).toBeGreaterThanOrEqual(before);
    expect(restored).toBeLessThanOrEqual(during + 1);
  });
});
