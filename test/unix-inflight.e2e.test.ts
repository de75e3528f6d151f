import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, startFixture, waitForLine, waitGone } from './helpers/processes.js';
import { checkpointAndRestore, startLogged } from './helpers/trees.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-unix-inflight-bin-');
  compileFixture('unixinflight', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

const RESULT = /^stream=/;

describe('unix sockets with descriptors in flight (SCM_RIGHTS), checkpointed with --kill and restored', () => {
  it('a parent and child keep their socketpair; the pipe, eventfd and file in flight come back working; seqpacket boundaries, shutdown, a closed peer, credentials, SO_RCVBUF and O_NONBLOCK are kept', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, join(bin, 'unixinflight'), [join(dir, 'held.txt')], out);
    const child = Number((await waitForLine(out, /^ready \d+/)).split(' ')[1]);
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    process.kill(child, 'SIGUSR1');
    const line = await waitForLine(out, RESULT);
    expect(line).toBe('stream=fds creds=parent pipe=pipe-data,eof eventfd=5 file=234 seq=a,bb:7,ccc shut=x,eof,back=y gone=bye,eof rcvbuf=600000 nonblock=1');
  });

  it('a file in flight whose holder was left out fails the restore by name, and leaves no process behind', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, join(bin, 'unixinflight'), [join(dir, 'held.txt')], out);
    const child = Number((await waitForLine(out, /^ready \d+/)).split(' ')[1]);
    // The parent's fd 4 is the file it sent and keeps.
    await checkpointAndKill(root, join(dir, 'img'), ['--exclude', 'files:fd=4']);
    await waitGone(child);
    const r = await crAsync(['restore', '-D', join(dir, 'img'), '--detach']);
    expect(r.status).toBe(5);
    expect(r.stderr).toContain(`a file in flight in its queue was fd 4 of PID ${root.pid}, which was not restored; include it`);
    expect(existsSync(`/proc/${root.pid}`) || existsSync(`/proc/${child}`)).toBe(false);
  });

  it('checkpointed and left running, the program reads every message and file in flight as if nothing happened', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startFixture(cleanup, join(bin, 'unixinflight'), [join(dir, 'held.txt')], out);
    const child = Number((await waitForLine(out, /^ready \d+/)).split(' ')[1]);
    const r = await crAsync(['checkpoint', String(root.pid), '-D', join(dir, 'img')]);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    process.kill(child, 'SIGUSR1');
    expect(await waitForLine(out, RESULT)).toBe('stream=fds creds=parent pipe=pipe-data,eof eventfd=5 file=234 seq=a,bb:7,ccc shut=x,eof,back=y gone=bye,eof rcvbuf=600000 nonblock=1');
  });

  it("python's multiprocessing: a descriptor sent with reduction.send_handle and a pickled object behind it reach the child after the restore; a message from the child through a Listener connection reaches the parent", async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, 'python3', [join(REPO, 'test/fixtures/unix-mp.py'), join(dir, 'listener.sock')], out);
    const child = Number((await waitForLine(out, /^ready \d+/)).split(' ')[1]);
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    process.kill(child, 'SIGUSR1');
    expect(await waitForLine(out, /^child got/)).toBe("child got through multiprocessing {'counter': 42}");
    process.kill(root.pid!, 'SIGUSR1');
    expect(await waitForLine(out, /^parent got/)).toBe('parent got hello from the child');
  });
});
