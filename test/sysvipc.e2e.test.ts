import { spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, cr, crJson, startUntilReady, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Keys of the SysV IPC objects in the host's IPC namespace (the one this test runs in). */
const hostKeys = () =>
  ['shm', 'msg', 'sem'].flatMap((kind) =>
    readFileSync(`/proc/sysvipc/${kind}`, 'utf8').trim().split('\n').slice(1).map((line) => `${kind}:${line.trim().split(/\s+/)[0]}`),
  );
const FIXTURE_KEYS = ['shm:4660', 'shm:4661', 'msg:22136', 'sem:39612'];
let keysBefore: string[];
beforeAll(() => {
  keysBefore = hostKeys();
});
afterAll(() => {
  // Every fixture object lived in a namespace of its own: none may have leaked into the host's.
  expect(hostKeys().filter((k) => FIXTURE_KEYS.includes(k) && !keysBefore.includes(k))).toEqual([]);
});

let fixture: string;
beforeAll(() => {
  fixture = join(tempDir('cr-sysvipc-bin-'), 'sysvipc');
  const built = spawnSync('cc', ['-O2', '-Wall', '-o', fixture, join(REPO, 'test/fixtures/sysvipc.c')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc failed: ${built.stderr}`);
  return () => spawnSync('rm', ['-rf', join(fixture, '..')]);
});

/** Starts the fixture in a fresh IPC namespace and waits until its objects exist. */
function startObjects(): Promise<ChildProcess> {
  return startUntilReady('unshare', ['--ipc', fixture, 'create'], cleanup);
}

/** A process alone in a new, empty IPC namespace whose kernel.msgmnb is `msgmnb`. */
function startEmptyNamespace(msgmnb: string): Promise<ChildProcess> {
  return startUntilReady('unshare', ['--ipc', 'sh', '-c', `echo ${msgmnb} > /proc/sys/kernel/msgmnb && echo ready && exec sleep 1000`], cleanup);
}

/** Everything the fixture sees in an IPC namespace: ids, keys, modes, owners, content hashes. */
function dump(nsArg: string): string {
  const r = spawnSync('nsenter', [nsArg, fixture, 'dump'], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (r.status !== 0) throw new Error(`dump failed: ${r.stderr}`);
  return r.stdout;
}

describe('SysV IPC objects checkpointed on their own', () => {
  it('restores shm, msg and sem with the same ids, keys, owners, contents, message order and values', async () => {
    const child = await startObjects();
    const ns = `--ipc=/proc/${child.pid}/ns/ipc`;
    const before = dump(ns);
    expect(before).toMatch(/^shm id=\d+ key=0x1234 mode=600 .* size=67108864 /m);
    expect(before).toMatch(/^shm id=\d+ key=0x1235 mode=2640 uid=1000 gid=1000 cuid=1001 cgid=1002 /m);
    expect(before).toMatch(/^msg id=\d+ key=0x5678 mode=620 .* qnum=1000 /m);
    expect(before).toMatch(/^sem id=\d+ key=0x9abc mode=666 uid=1003 gid=1003 cuid=1003 cgid=1003 values=7,0,42,1000,32767$/m);
    expect(before).toMatch(/^ {2}msg 0 type=\d size=0 /m);
    expect(before).toMatch(/^ {2}msg 1 type=\d size=8192 /m);
    // The fixture used and removed slots first, so no object sits at id 0.
    expect(before).not.toMatch(/^(shm|msg|sem) id=0 /m);

    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    const saved = cr(['checkpoint', '--ipc-ns', String(child.pid), '-D', img]);
    expect(saved.status, saved.stderr).toBe(0);
    // MSG_COPY left the queue exactly as it was.
    expect(dump(ns)).toBe(before);

    child.kill('SIGKILL');
    const pins = cleanup.pins(join(dir, 'pins'));
    const restored = cr(['restore', '-D', img, '--pin-ns', pins]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(dump(`--ipc=${pins}/ipc`)).toBe(before);
  });

  it('aborts a restore into a namespace where an id or key is taken, changing nothing', async () => {
    const child = await startObjects();
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    expect(cr(['checkpoint', '--ipc-ns', `/proc/${child.pid}/ns/ipc`, '-D', img]).status).toBe(0);

    const other = await startObjects();
    const target = `/proc/${other.pid}/ns/ipc`;
    const before = dump(`--ipc=${target}`);
    const clash = cr(['restore', '-D', img, '--into-ipc-ns', target]);
    expect(clash.status).toBe(5);
    expect(clash.stderr).toMatch(/cannot restore sysvipc-\w+:\d+ \(\w+ id \d+, key 0x[0-9a-f]+\) into .*: \w+ id \d+ with key 0x[0-9a-f]+ is already there/);
    expect(dump(`--ipc=${target}`)).toBe(before);
  });

  it('removes everything it created when a restore fails half-way (a corrupt segment blob)', async () => {
    const child = await startObjects();
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    expect(cr(['checkpoint', '--ipc-ns', String(child.pid), '-D', img]).status).toBe(0);
    const manifest = JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')) as { objects: { key: string; attributes: { key?: string }; blobs?: { contents?: string } }[] };
    const blob = join(img, manifest.objects.find((o) => o.attributes.key === '0x00001234')!.blobs!.contents!);
    const fd = openSync(blob, 'r+');
    writeSync(fd, Buffer.from([0xff]), 0, 1, 12345678);
    closeSync(fd);

    const empty = await startEmptyNamespace('16384');
    const target = `/proc/${empty.pid}/ns/ipc`;
    // The saved queue is bigger than this namespace allows: refused before anything is created.
    const tooBig = cr(['restore', '-D', img, '--into-ipc-ns', target]);
    expect(tooBig.status).toBe(5);
    expect(tooBig.stderr).toMatch(/msg_qbytes 16777216 is above that namespace's kernel.msgmnb 16384, and cr lacks CAP_SYS_RESOURCE/);
    expect(dump(`--ipc=${target}`)).toBe('');

    const roomy = await startEmptyNamespace(String(16 << 20));
    const failed = cr(['restore', '-D', img, '--into-ipc-ns', `/proc/${roomy.pid}/ns/ipc`]);
    expect(failed.status).toBe(4);
    expect(failed.stderr).toContain(`${blob} is corrupt`);
    // The queue and the semaphore set came first and were created; they are gone again.
    expect(dump(`--ipc=/proc/${roomy.pid}/ns/ipc`)).toBe('');
  });

  it("refuses, before creating anything, objects above the target namespace's shmmax or msgmax", async () => {
    const child = await startObjects();
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    expect(cr(['checkpoint', '--ipc-ns', String(child.pid), '-D', img]).status).toBe(0);

    const small = (sysctl: string) =>
      startUntilReady('unshare', ['--ipc', 'sh', '-c', `echo ${16 << 20} > /proc/sys/kernel/msgmnb && echo ${sysctl} && echo ready && exec sleep 1000`], cleanup);
    const lowShm = await small('1048576 > /proc/sys/kernel/shmmax');
    const shm = cr(['restore', '-D', img, '--into-ipc-ns', `/proc/${lowShm.pid}/ns/ipc`]);
    expect(shm.status).toBe(5);
    expect(shm.stderr).toMatch(/cannot restore sysvipc-shm:\d+ \(shm id \d+, 67108864 bytes\) into .*: that is above the namespace's kernel.shmmax 1048576/);
    expect(dump(`--ipc=/proc/${lowShm.pid}/ns/ipc`)).toBe('');

    const lowMsg = await small('4096 > /proc/sys/kernel/msgmax');
    const msg = cr(['restore', '-D', img, '--into-ipc-ns', `/proc/${lowMsg.pid}/ns/ipc`]);
    expect(msg.status).toBe(5);
    expect(msg.stderr).toMatch(/cannot restore sysvipc-msg:\d+ \(msg id \d+\) into .*: it holds a 8192-byte message, above that namespace's kernel.msgmax 4096/);
    expect(dump(`--ipc=/proc/${lowMsg.pid}/ns/ipc`)).toBe('');
  });

  it('saves exactly the objects selected by type, key and id, and records why', async () => {
    const child = await startObjects();
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    const plan = crJson<{ objects: { key: string; attributes: { id: number; key: string } }[] }>(['checkpoint', '--ipc-ns', String(child.pid), '--dry-run']);
    const queue = plan.objects.find((o) => o.key.startsWith('sysvipc-msg:'))!;

    const r = cr([
      'checkpoint', '--ipc-ns', String(child.pid), '-D', img,
      '--exclude', 'sysvipc-shm', '--include', 'sysvipc-shm:key=0x1235',
      '--exclude', `sysvipc-msg:id=${queue.attributes.id}`,
    ]);
    expect(r.status, r.stderr).toBe(0);
    const { manifest, records } = crJson<{
      manifest: { objects: { key: string; type: string; attributes: { key?: string }; policy: { decision: string; rule: string; source: string } }[] };
      records: Record<string, unknown>;
    }>(['inspect', img]);
    const decided = Object.fromEntries(manifest.objects.map((o) => [`${o.type}:${o.attributes.key ?? ''}`, o.policy]));
    expect(decided['sysvipc-shm:0x00001234']).toEqual({ decision: 'exclude', rule: 'type sysvipc-shm', source: 'flag --exclude' });
    expect(decided['sysvipc-shm:0x00001235']).toEqual({ decision: 'include', rule: 'object sysvipc-shm key=0x00001235', source: 'flag --include' });
    expect(decided['sysvipc-msg:0x00005678']).toEqual({ decision: 'exclude', rule: `object sysvipc-msg id=${queue.attributes.id}`, source: 'flag --exclude' });
    expect(Object.keys(records).map((k) => k.split(':')[0]).sort()).toEqual(['ipc-ns', 'sysvipc-sem', 'sysvipc-shm']);
    expect(readdirSync(join(img, 'blobs'))).toEqual(['sysvipc-shm']);
  });
});
