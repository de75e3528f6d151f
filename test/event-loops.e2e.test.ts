import { once } from 'node:events';
import { mkdirSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, lines, restoreDetached, startFixture, waitFor, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
const fixture = (name: string) => join(bin, name);
beforeAll(() => {
  bin = tempDir('cr-loops-bin-');
  for (const name of ['epollserver', 'inotify']) compileFixture(name, bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** Sends a line to 127.0.0.1:port and returns the whole answer. */
function ask(port: number, line: string): Promise<string> {
  return new Promise((ok, fail) => {
    let answer = '';
    const socket = connect(port, '127.0.0.1', () => socket.write(line));
    socket.on('data', (d) => (answer += d.toString()));
    socket.on('end', () => ok(answer));
    socket.on('error', fail);
  });
}

describe('event loops, checkpointed with --kill and restored', () => {
  it('an epoll loop over an eventfd, a nested epoll with a self-pipe and a TCP listener keeps serving on the same port', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('epollserver'), [], out);
    const port = Number((await waitForLine(out, /^ready \d+/)).split(' ')[1]);
    expect(await ask(port, 'hello\n')).toBe('served 1\n');
    process.kill(child.pid!, 'SIGUSR1');
    await waitForLine(out, /^eventfd 1$/);
    const saved = await checkpointAndKill(child, join(dir, 'img'));
    expect(saved).toMatch(/epoll:\d+:7, epoll:\d+:8/);
    expect(saved).toMatch(/inet-sockets:\d+:6/);
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    expect(await ask(port, 'again\n')).toBe('served 2\n');
    process.kill(child.pid!, 'SIGUSR1');
    await waitForLine(out, /^eventfd 2$/);
    process.kill(child.pid!, 'SIGUSR2');
    await waitForLine(out, /^pipe 1$/);
  });

  it('an inotify watch on a directory reports a file created after the restore, with the same watch number; unread events are dropped with a warning', async () => {
    const dir = cleanup.dir(tempDir());
    const watched = join(dir, 'watched');
    mkdirSync(join(watched, 'sub'), { recursive: true });
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, fixture('inotify'), [watched], out);
    const events = async () => {
      const before = lines(out).length;
      process.kill(child.pid!, 'SIGUSR1');
      await waitFor('the events read', () => (lines(out).slice(before).includes('read') ? true : undefined));
      return lines(out).slice(before, -1);
    };
    writeFileSync(join(watched, 'before'), '');
    expect(await events()).toEqual(['created before wd=2']);
    writeFileSync(join(watched, 'unread'), '');
    const exited = once(child, 'exit');
    const r = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img'), '--kill']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(new RegExp(`^cr: warning: PID ${child.pid}: fd 3, an inotify instance, has \\d+ bytes of events not read yet; they are not saved`));
    await exited;
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    writeFileSync(join(watched, 'after'), '');
    expect(await events()).toEqual(['created after wd=2']);
  });
});
