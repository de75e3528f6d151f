import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, restoreDetached, startFixture, waitForLine } from './helpers/processes.js';
import { checkpointWhileLoaded, httpGet } from './helpers/servers.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** The request number, ticks and key of an answer of test/fixtures/httpcounter.cjs. */
async function ask(port: number, path: string): Promise<{ request: number; ticks: number; key: string }> {
  const r = await httpGet(port, path);
  if ('error' in r) throw new Error(r.error);
  const m = /^request (\d+) ticks (\d+) key ([0-9a-f]{32})$/.exec(r.body);
  if (!m) throw new Error(`unexpected answer: ${r.body}`);
  return { request: Number(m[1]), ticks: Number(m[2]), key: m[3]! };
}

/**
 * node itself runs the server; its stdout and stderr go to a file. Not to a pipe of this
 * process: a restored program is given cr restore's own stdout and stderr when its own led
 * outside the checkpoint, and a reader of `cr restore --detach`'s output then waits for the
 * server to end (what made an earlier version of this test hang for 60 s).
 */
async function startServer(dir: string) {
  const out = join(dir, 'out.txt');
  const server = await startFixture(cleanup, process.execPath, [join(REPO, 'test/fixtures/httpcounter.cjs')], out);
  const port = Number((await waitForLine(out, /^ready \d+$/)).split(' ')[1]);
  return { server, port };
}

describe('a Node.js HTTP server (a timer, a count in memory, pbkdf2 on libuv thread pool)', () => {
  it('checkpointed with --kill and restored, answers on the same port with its count and timer carried on', async () => {
    const dir = cleanup.dir(tempDir());
    const { server, port } = await startServer(dir);
    const first = await ask(port, '/a');
    expect(first.request).toBe(1);
    expect((await ask(port, '/b')).request).toBe(2);

    const saved = await checkpointAndKill(server, join(dir, 'img'));
    // libuv's pool threads, its epoll instance and eventfds, and the listener are in the image.
    expect(saved).toMatch(/epoll:\d+:\d+/);
    expect(saved).toMatch(/eventfd:\d+:\d+/);
    expect(saved).toMatch(/inet-sockets:\d+:\d+/);
    await restoreDetached(cleanup, join(dir, 'img'), server.pid!);

    const after = await ask(port, '/a');
    expect(after.request).toBe(3);
    expect(after.key).toBe(first.key);
    // The interval timer runs on from where it was: its ticks grow again after the restore.
    expect(after.ticks).toBeGreaterThanOrEqual(first.ticks);
    let later = await ask(port, '/c');
    for (let i = 0; later.ticks === after.ticks && i < 100; i++) later = await ask(port, '/c');
    expect(later.ticks).toBeGreaterThan(after.ticks);
    expect(later.request).toBeGreaterThan(after.request);
  });

  it('checkpointed while a client makes request after request: none fails, it serves on, and the image restores with the count it had', async () => {
    const dir = cleanup.dir(tempDir());
    const { server, port } = await startServer(dir);
    const { image, answers, before, during } = await checkpointWhileLoaded(cleanup, server.pid!, join(dir, 'img'), () => ask(port, '/load'));
    // Every request was counted once, in order.
    expect(answers.map((a) => a.request)).toEqual(answers.map((_, i) => i + 1));

    const exited = new Promise((ok) => server.once('exit', ok));
    server.kill('SIGKILL');
    await exited;
    await restoreDetached(cleanup, image, server.pid!);
    // The image holds the count of a moment while the checkpoint ran.
    const restored = (await ask(port, '/after')).request - 1;
    expect(restored).toBeGreaterThanOrEqual(before);
    expect(restored).toBeLessThanOrEqual(during + 1);
  });
});
