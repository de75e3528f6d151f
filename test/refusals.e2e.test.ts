import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, processState, startFixture, tracerOf } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-refusals-bin-');
  compileFixture('refusals', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

describe('--dry-run lists every refusal, before any freeze', () => {
  it('an established TCP connection (both ends), an epoll item whose fd was closed and a descriptor in flight are all named at once (its memfd is saved), by --dry-run and by the checkpoint', async () => {
    const dir = cleanup.dir(tempDir());
    const child = await startFixture(cleanup, join(bin, 'refusals'), [], join(dir, 'out.txt'));
    const pid = child.pid!;
    const refused = [`epoll:${pid}:6`, `inet-sockets:${pid}:4`, `inet-sockets:${pid}:5`, `unix-sockets:${pid}:10`];

    const dry = await crAsync(['checkpoint', String(pid), '--dry-run']);
    expect(dry.status, dry.stderr).toBe(7);
    expect(dry.stdout).toMatch(/^OBJECT\s+TYPE\s+DECISION/);
    expect(dry.stderr).toContain('cr: a checkpoint would refuse 4 object(s):\n');
    expect(dry.stderr).toContain(`  epoll:${pid}:6: PID ${pid}: fd 6 is an epoll instance watching a file it was given as fd 7, which the process has closed since`);
    expect(dry.stderr).toMatch(new RegExp(`  inet-sockets:${pid}:4: PID ${pid}: fd 4 is an established TCP connection \\(127\\.0\\.0\\.1:\\d+ -> 127\\.0\\.0\\.1:\\d+\\); pass --tcp-established to save it \\(with TCP_REPAIR\\)`));
    expect(dry.stderr).toContain(`  inet-sockets:${pid}:5: PID ${pid}: fd 5 is an established TCP connection`);
    expect(dry.stderr).toMatch(new RegExp(`  unix-sockets:${pid}:10: PID ${pid}: fd 10, a unix stream socket, has in flight \\(SCM_RIGHTS\\) a socket \\(socket:\\[\\d+\\]\\) that no process holds, which may have descriptors in flight itself; .* or leave it out with --exclude unix-sockets:fd=10`));

    const json = await crAsync(['checkpoint', String(pid), '--dry-run', '--json']);
    expect(json.status).toBe(7);
    const { refusals } = JSON.parse(json.stdout) as { refusals: { key: string; reason: string }[] };
    expect(refusals.map((r) => r.key).sort()).toEqual([...refused].sort());

    // The checkpoint itself stops with all of them, writes nothing, and lets the process go.
    const real = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img')]);
    expect(real.status).toBe(7);
    expect(real.stderr).toMatch(/^cr: 4 objects cannot be checkpointed:\n/);
    for (const r of refusals) expect(real.stderr).toContain(`  ${r.reason}\n`);
    expect(existsSync(join(dir, 'img'))).toBe(false);
    expect(processState(pid)).toBe('S');
    expect(tracerOf(pid)).toBe(0);

    // Leaving every one of them out, nothing is refused.
    const left = await crAsync(['checkpoint', String(pid), '--dry-run', '--exclude', 'epoll', '--exclude', 'inet-sockets:fd=4', '--exclude', 'inet-sockets:fd=5', '--exclude', 'unix-sockets']);
    expect(left.stderr).toBe('');
    expect(left.status).toBe(0);
  });
});
