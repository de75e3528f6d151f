import { spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, crJson, tempDir } from './helpers/cli.js';
import { compileFixture, crAsync, processState, startFixture, waitForLine, waitGone } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const PLUGIN = join(REPO, 'test/fixtures/mqueue-plugin/index.js');
const TWIN = join(REPO, 'test/fixtures/mqueue-plugin/twin.js');

let bin: string;
let fdkinds: string;
beforeAll(() => {
  bin = tempDir('cr-fdkinds-bin-');
  fdkinds = compileFixture('fdkinds', bin, ['-lrt']);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

let queues = 0;

/** Starts the fixture holding `kinds` (from fd 3 up), its output in DIR/out.txt. */
async function holding(dir: string, kinds: string[]): Promise<{ child: ChildProcess; pid: number; out: string }> {
  const out = join(dir, 'out.txt');
  const child = await startFixture(cleanup, fdkinds, kinds, out);
  return { child, pid: child.pid!, out };
}

/** A new POSIX message queue name, removed again by cleanup (the fixture leaves it linked). */
function queueName(): string {
  const name = `/cr-test-${process.pid}-${queues++}`;
  cleanup.add(() => void spawnSync(fdkinds, ['--unlink', name]));
  return name;
}

/** Asks the fixture whether each of its descriptors is still what it opened; it exits after answering. */
async function selfCheck(pid: number, out: string): Promise<string> {
  expect(processState(pid)).toMatch(/^[RS]$/);
  process.kill(pid, 'SIGUSR1');
  return waitForLine(out, /^(ok|BROKEN)/);
}

/** A directory whose config loads the given plugins. */
function projectWith(plugins: string[]): string {
  const dir = cleanup.dir(tempDir());
  writeFileSync(join(dir, '.crrc.json'), JSON.stringify({ plugins }));
  return dir;
}

describe('one owner per descriptor', () => {
  it('a POSIX message queue is refused by name, even with a regular file at its path; --exclude files:fd=3 leaves it out', async () => {
    const dir = cleanup.dir(tempDir());
    const name = queueName();
    // The queue's /proc link reads like this path: a file there must not be taken for the queue.
    writeFileSync(name, 'a regular file, not the queue\n');
    cleanup.add(() => rmSync(name, { force: true }));
    const { pid, out } = await holding(dir, [`mqueue:${name}`]);

    const expected = `PID ${pid}: fd 3 is a POSIX message queue (${name}), which cr cannot checkpoint yet (no installed plugin claims fd:${pid}:3); leave it out with --exclude files:fd=3`;
    for (const args of [['-D', join(dir, 'img')], ['--dry-run']]) {
      const refused = await crAsync(['checkpoint', String(pid), ...args]);
      expect(refused.status, refused.stderr).toBe(7);
      expect(refused.stderr).toContain(expected);
    }
    expect(existsSync(join(dir, 'img'))).toBe(false);

    const r = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img'), '--exclude', 'files:fd=3']);
    expect(r.status, r.stderr).toBe(0);
    const { manifest, records } = crJson<{ manifest: { objects: { key: string; policy: object }[] }; records: Record<string, unknown> }>(['inspect', join(dir, 'img')]);
    expect(manifest.objects.find((o) => o.key === `files:${pid}:3`)).toMatchObject({ policy: { decision: 'exclude', rule: 'object files fd=3' } });
    expect(records[`files:${pid}:3`]).toBeUndefined();
    expect(await selfCheck(pid, out)).toBe('ok');
  });

  it('a plugin that claims message queue descriptors gets them: the files plugin leaves fd 3 to it, and the dry run says so', async () => {
    const dir = projectWith([PLUGIN]);
    const name = queueName();
    const { pid, out } = await holding(dir, [`mqueue:${name}`]);

    const plan = await crAsync(['checkpoint', String(pid), '--dry-run', '--json'], { cwd: dir });
    expect(plan.status, plan.stderr).toBe(0);
    const decisions = new Map((JSON.parse(plan.stdout) as { objects: { key: string; policy: object }[] }).objects.map((o) => [o.key, o.policy]));
    expect(decisions.get(`files:${pid}:3`)).toEqual({ decision: 'exclude', rule: `claim of mqueue-fd:${pid}:3`, source: 'plugin mqueue-fd' });
    expect(decisions.get(`mqueue-fd:${pid}:3`)).toEqual({ decision: 'include', rule: 'default', source: 'default' });

    const r = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img')], { cwd: dir });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain(`files:${pid}:3 (exclude by claim of mqueue-fd:${pid}:3)`);
    const { records } = crJson<{ records: Record<string, unknown> }>(['inspect', join(dir, 'img')], dir);
    expect(records[`mqueue-fd:${pid}:3`]).toEqual({ fd: 3, name, flags: expect.any(Number) });
    expect(records[`files:${pid}:3`]).toBeUndefined();
    expect(await selfCheck(pid, out)).toBe('ok');
  });

  it('the third-party plugin restores what it claimed: the queue is open again on fd 3 of the restored process', async () => {
    const dir = projectWith([PLUGIN]);
    const name = queueName();
    const { child, pid, out } = await holding(dir, [`mqueue:${name}`]);
    const exited = once(child, 'exit');
    const saved = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img'), '--kill'], { cwd: dir });
    expect(saved.status, saved.stderr).toBe(0);
    await exited;
    const log = join(dir, 'restore.log');
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach'], { cwd: dir, env: { CR_MQUEUE_LOG: log } });
    cleanup.orphan(pid);
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(log, 'utf8')).toBe(`restore mqueue-fd:${pid}:3 ${name}\n`);
    expect(readlinkSync(`/proc/${pid}/fd/3`)).toBe(name);
    // The fixture asks the queue itself (mq_getattr): the one it created, with its maxmsg.
    expect(await selfCheck(pid, out)).toBe('ok');
  });

  it('a queue that is gone by the restore is refused by name, and no process is left', async () => {
    const dir = projectWith([PLUGIN]);
    const name = queueName();
    const { child, pid } = await holding(dir, [`mqueue:${name}`]);
    const exited = once(child, 'exit');
    expect((await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img'), '--kill'], { cwd: dir })).status).toBe(0);
    await exited;
    spawnSync(fdkinds, ['--unlink', name]);
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach'], { cwd: dir });
    cleanup.orphan(pid);
    expect(r.status, r.stderr).toBe(5);
    expect(r.stderr).toContain(`cannot restore mqueue-fd:${pid}:3: message queue ${name} cannot be opened (ENOENT); it must exist as it did at the checkpoint`);
    await waitGone(pid);
  });

  it('two plugins claiming the same descriptor are refused before anything is saved, naming both', async () => {
    const dir = projectWith([PLUGIN, TWIN]);
    const { pid, out } = await holding(dir, [`mqueue:${queueName()}`]);
    const r = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img')], { cwd: dir });
    expect(r.status, r.stderr).toBe(6);
    expect(r.stderr).toContain(`fd:${pid}:3 is claimed twice: by mqueue-fd:${pid}:3 (plugin ${PLUGIN}) and by mqueue-fd-twin:${pid}:3 (plugin ${TWIN})`);
    expect(existsSync(join(dir, 'img'))).toBe(false);
    expect(await selfCheck(pid, out)).toBe('ok');
  });

  it('every other kind of descriptor the files plugin cannot reopen is refused by its kind, at stdio too', async () => {
    const kinds: [string, string | RegExp][] = [
      // eventfds, signalfds, timerfds (test/processes.e2e.test.ts), memfds and pipes (test/pipes-shmem.e2e.test.ts), epoll and
      // inotify instances (test/event-loops.e2e.test.ts), unix, TCP and UDP sockets (test/sockets.e2e.test.ts), netlink sockets
      // (test/netlink.e2e.test.ts) and pidfds (test/pidfds.e2e.test.ts) have plugins of their own.
      ['packet', /fd 3 is a socket \(socket:\[\d+\]\),/],
      ['procfs', /fd 3 is a file on procfs \(\/proc\/\d+\/status\),/],
      ['sysfs', 'fd 3 is a file on sysfs (/sys/devices/system/cpu/online)'],
    ];
    const results = await Promise.all(
      kinds.map(async ([kind, expected]) => {
        const dir = cleanup.dir(tempDir());
        const { pid, out } = await holding(dir, [kind]);
        const r = await crAsync(['checkpoint', String(pid), '-D', join(dir, 'img')]);
        return { kind, expected, pid, out, r, imaged: existsSync(join(dir, 'img')) };
      }),
    );
    for (const { kind, expected, pid, out, r, imaged } of results) {
      expect(r.status, `${kind}: ${r.stderr}`).toBe(7);
      expect(r.stderr).toContain(`PID ${pid}: `);
      if (typeof expected === 'string') expect(r.stderr).toContain(expected);
      else expect(r.stderr).toMatch(expected);
      expect(r.stderr).toContain('--exclude files:fd=3');
      expect(imaged).toBe(false);
      expect(await selfCheck(pid, out), kind).toBe('ok');
    }
  });
});
