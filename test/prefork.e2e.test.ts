import { once } from 'node:events';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, restoreDetached, startFixture, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Connects to the prefork server and returns its answer: the worker's PID and its count. */
async function ask(port: number): Promise<{ pid: number; count: number }> {
  const socket = createConnection(port, '127.0.0.1');
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  await once(socket, 'end');
  const [pid, count] = text.trim().split(' ').map(Number);
  return { pid: pid!, count: count! };
}

describe('descriptions shared by the processes of a tree', () => {
  it('a prefork server: a TCP listener and an epoll instance the parent made and both workers wait on come back shared, on the same port', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const parent = await startFixture(cleanup, 'python3', [join(REPO, 'test/fixtures/prefork.py')], out);
    const [port, ...workers] = (await waitForLine(out, /^ready /)).split(' ').slice(1).map(Number);
    for (const pid of workers) cleanup.orphan(pid!);
    const counts = new Map(workers.map((pid) => [pid!, 0]));
    for (let i = 0; i < 6; i++) {
      const { pid, count } = await ask(port!);
      expect(count).toBe(counts.get(pid)! + 1);
      counts.set(pid, count);
    }

    const saved = await checkpointAndKill(parent, join(dir, 'img'));
    // One object each, however many processes hold it.
    const objects = /^saved \d+ object\(s\): (.*)$/m.exec(saved)![1]!.split(', ');
    expect(objects.filter((o) => o.startsWith('inet-sockets:'))).toHaveLength(1);
    expect(objects.filter((o) => o.startsWith('epoll:'))).toHaveLength(1);
    await restoreDetached(cleanup, join(dir, 'img'), parent.pid!);

    for (let i = 0; i < 6; i++) {
      const { pid, count } = await ask(port!);
      expect(workers).toContain(pid);
      expect(count).toBe(counts.get(pid)! + 1);
      counts.set(pid, count);
    }
  });
});
