import { once } from 'node:events';
import { mkdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AF_INET, Kernel, SOL_SOCKET, socketInode } from '@cr/core';
import { Cleanup, crJson, tempDir } from './helpers/cli.js';
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
    const { records } = crJson<{ records: Record<string, { state: string; backlog: number; options: Record<string, number> }> }>(['inspect', join(dir, 'img')]);
    expect(records[`inet-sockets:${child.pid}:6`]).toMatchObject({ state: 'listen', backlog: 16, local: { family: 'inet', address: '127.0.0.1', port }, options: { reuseaddr: 1 } });
    await restoreDetached(cleanup, join(dir, 'img'), child.pid!);
    // The restored listener has the program's backlog and SO_REUSEADDR.
    const kernel = new Kernel();
    const SO_REUSEADDR = 2;
    expect(kernel.withFdOf(child.pid!, 6, (fd, target) => kernel.sockets.intOption(fd, SOL_SOCKET, SO_REUSEADDR, target))).toBe(1);
    const inode = socketInode({ link: readlinkSync(`/proc/${child.pid}/fd/6`) });
    expect(kernel.sockDiag.tcpListeners(AF_INET).get(inode)?.backlog).toBe(16);
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
