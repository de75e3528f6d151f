import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, crAsync, lines, restoreDetached, startFixture, waitFor } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const FIXTURE = join(REPO, 'test/fixtures/netlink.py');

/** Asks the fixture for a report and returns it once printed, without its "report " prefix. */
async function report(pid: number, out: string): Promise<string> {
  const before = lines(out).length;
  process.kill(pid, 'SIGUSR1');
  return waitFor('a report', () => lines(out).slice(before).find((l) => l.startsWith('report '))?.slice('report '.length));
}

describe('netlink sockets, checkpointed with --kill and restored', () => {
  it('come back on the same port id, in the same groups (beyond the first 32 too), with their options, and answer a dump; an unbound one stays unbound', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const child = await startFixture(cleanup, 'python3', [FIXTURE], out);
    const pid = child.pid!;
    const before = await report(pid, out);
    expect(before).toMatch(new RegExp(`^portid=${pid} groups=1,5,34 extack=1 links=[1-9]\\d* unbound=\\(0, 0\\)$`));
    const saved = await checkpointAndKill(child, join(dir, 'img'));
    expect(saved).toMatch(new RegExp(`netlink-sockets:${pid}:\\d+, netlink-sockets:${pid}:\\d+`));
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    expect(await report(pid, out)).toBe(before);
  });

  it('one with messages not read yet is refused by name, and the program runs on', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    // Stopped, it cannot read the dump it asked for: the kernel's answer waits in its socket.
    const child = await startFixture(cleanup, 'python3', ['-c', `
import os, signal, socket, struct
s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
s.bind((0, 0))
s.send(struct.pack("=IHHII", 32, 18, 0x301, 1, 0) + bytes(16))
print(f"ready {os.getpid()}", flush=True)
signal.pause()
`], out);
    const r = await crAsync(['checkpoint', String(child.pid), '-D', join(dir, 'img')]);
    expect(r.stderr).toMatch(new RegExp(`^cr: PID ${child.pid}: fd 3 is a netlink socket (with \\d+ bytes of messages not read yet|the kernel is answering a dump request on), which cr cannot (put back|resume); checkpoint once the program has read (them|the dump), or leave it out with --exclude netlink-sockets:fd=3\\n$`));
    expect(r.status).toBe(7);
    expect(child.exitCode).toBe(null);
  });
});
