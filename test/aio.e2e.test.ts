import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, lines, restoreDetached, startFixture, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-aio-bin-');
  compileFixture('aio', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

describe('Linux AIO (io_setup), checkpointed with --kill and restored', () => {
  it('the context keeps its id and its ring where it was, a completion left in the ring is reaped after restore, and the context takes new requests', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const data = join(dir, 'data');
    writeFileSync(data, 'first sixteen b.second sixteen..third sixteen b.');
    const child = await startFixture(cleanup, join(bin, 'aio'), [data], out);
    const pid = child.pid!;
    expect(lines(out)).toContain('first res=16 data=1111 buf=first sixteen b.');
    const ring = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith('/[aio] (deleted)'))!;
    await checkpointAndKill(child, join(dir, 'img'));
    await restoreDetached(cleanup, join(dir, 'img'), pid);
    const restored = readFileSync(`/proc/${pid}/maps`, 'utf8').split('\n').find((l) => l.endsWith('/[aio] (deleted)'))!;
    expect(restored.split(/\s+/).slice(0, 2)).toEqual(ring.split(/\s+/).slice(0, 2));
    process.kill(pid, 'SIGUSR1');
    expect(await waitForLine(out, /^pending /)).toBe('pending res=16 data=2222 buf=second sixteen..');
    expect(await waitForLine(out, /^next /)).toBe('next res=16 data=3333 buf=third sixteen b.');
    expect(lines(out).filter((l) => l.startsWith('ERROR'))).toEqual([]);
  });
});
