import { spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, startUntilReady, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, crAsync, lines, restoreDetached, startFixture, waitForLine } from './helpers/processes.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** cr reads advice from here (CR_ADVICE_DIR, inherited by every cr this file runs), and the producer writes its own there. */
let adviceDir: string;
/** Where the advice about the fixtures, which run as root, is kept: root's own directory in it. */
const rootAdvice = () => join(adviceDir, '0');
let bin: string;
beforeAll(() => {
  bin = tempDir('cr-policy-bin-');
  compileFixture('prodcons', bin);
  adviceDir = join(tempDir('cr-advice-'), 'advice');
  process.env.CR_ADVICE_DIR = adviceDir;
});
afterAll(() => {
  delete process.env.CR_ADVICE_DIR;
  rmSync(bin, { recursive: true, force: true });
  rmSync(join(adviceDir, '..'), { recursive: true, force: true });
});

const prodcons = () => join(bin, 'prodcons');

/** Sends the fixture a command through its queue, from inside the IPC namespace at `ns`. */
function send(ns: string, type: 2 | 3, n: number): void {
  const r = spawnSync('nsenter', [`--ipc=${ns}`, prodcons(), 'send', String(type), String(n)], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`send ${type} ${n} into ${ns}: ${r.stdout}${r.stderr}`);
}

/** Lines of /proc/sysvipc/KIND (header left out) as seen from inside the IPC namespace at `ns`. */
function ipcObjects(ns: string): string[] {
  return ['shm', 'msg'].flatMap((kind) => nsenterOut(ns, ['cat', `/proc/sysvipc/${kind}`]).split('\n').slice(1).filter(Boolean));
}

function nsenterOut(ns: string, args: string[]): string {
  const r = spawnSync('nsenter', [`--ipc=${ns}`, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`nsenter ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

interface Scene {
  dir: string;
  producer: ChildProcess;
  consumer: ChildProcess;
  /** Their stdout and stderr. */
  outP: string;
  outC: string;
  /** The private IPC namespace they share. */
  ns: string;
}

/**
 * A producer (which writes its own advice file) and a consumer in one private IPC namespace.
 * Items 1-5 are produced and consumed; items 6-10 are produced and still queued, their contents
 * in the shared ring: both sit idle in msgrcv.
 */
async function startScene(): Promise<Scene> {
  const dir = cleanup.dir(tempDir('cr-policy-'));
  const outP = join(dir, 'producer.out');
  const outC = join(dir, 'consumer.out');
  mkdirSync(adviceDir, { recursive: true });
  const producer = await startFixture(cleanup, 'unshare', ['--ipc', prodcons(), 'producer', adviceDir], outP);
  const ns = `/proc/${producer.pid}/ns/ipc`;
  const consumer = await startFixture(cleanup, 'nsenter', [`--ipc=${ns}`, prodcons(), 'consumer'], outC);
  send(ns, 2, 5);
  await waitForLine(outP, /^sent 5$/);
  send(ns, 3, 0);
  await waitForLine(outC, /^drained 5$/);
  send(ns, 2, 5);
  await waitForLine(outP, /^sent 10$/);
  return { dir, producer, consumer, outP, outC, ns };
}

/**
 * The IPC namespace on its own, then the producer (its own advice leaves the SysV objects out)
 * and the consumer (--external sysvipc), each killed once saved: nothing is left of the scene.
 */
async function checkpointScene(s: Scene, producerFlags: string[] = []): Promise<{ ipc: string; producer: string; consumer: string }> {
  const images = { ipc: join(s.dir, 'ipc-img'), producer: join(s.dir, 'producer-img'), consumer: join(s.dir, 'consumer-img') };
  const ipc = await crAsync(['checkpoint', '--ipc-ns', s.ns, '-D', images.ipc]);
  expect(ipc.stderr).toBe('');
  expect(ipc.stdout).toMatch(/^saved 3 object\(s\): ipc-ns:\d+, sysvipc-msg:\d+, sysvipc-shm:\d+$/m);
  const producerOut = await checkpointAndKill(s.producer, images.producer, producerFlags);
  expect(producerOut).toMatch(/^external references, which restore must find: sysvipc-msg:\d+, sysvipc-shm:\d+$/m);
  await checkpointAndKill(s.consumer, images.consumer, ['--external', 'sysvipc']);
  return images;
}

/** Field 22 of /proc/PID/stat: what advice files are keyed by, beside the PID. */
function startTime(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

const items = (out: string) => lines(out).filter((l) => /^(got|ERROR)/.test(l));
const expectedItems = (n: number) => Array.from({ length: n }, (_, i) => `got ${i + 1} ok`);

describe('a producer and a consumer sharing a segment and a queue, checkpointed apart from them', () => {
  it.each([
    ['consumer', 'producer'],
    ['producer', 'consumer'],
  ] as const)('carry on consistently: IPC namespace restored first, then the %s, then the %s', async (first, second) => {
    const s = await startScene();
    const images = await checkpointScene(s);
    const pins = cleanup.pins(join(s.dir, 'pins'));
    const ipc = await crAsync(['restore', '-D', images.ipc, '--pin-ns', pins]);
    expect(ipc.stderr).toBe('');
    expect(ipc.status).toBe(0);

    const pids = { producer: s.producer.pid!, consumer: s.consumer.pid! };
    for (const who of [first, second]) await restoreDetached(cleanup, images[who], pids[who], ['--into-ipc-ns', join(pins, 'ipc')]);
    // Both live in the restored namespace, which holds the segment and queue they refer to.
    for (const pid of Object.values(pids)) expect(statSync(`/proc/${pid}/ns/ipc`).ino).toBe(statSync(join(pins, 'ipc')).ino);
    // The restored producer is a new process to the kernel; the advice it gave still holds for it.
    expect(readFileSync(join(rootAdvice(), `${pids.producer}-${startTime(pids.producer)}.json`), 'utf8')).toContain('"external"');

    // Items 6-10 were queued at checkpoint time: the consumer takes them from the restored queue
    // and finds each in the restored ring.
    send(join(pins, 'ipc'), 3, 0);
    await waitForLine(s.outC, /^drained 10$/);
    // The producer carries on numbering where it was, into the same segment.
    send(join(pins, 'ipc'), 2, 5);
    await waitForLine(s.outP, /^sent 15$/);
    send(join(pins, 'ipc'), 3, 0);
    await waitForLine(s.outC, /^drained 15$/);
    expect(items(s.outC)).toEqual(expectedItems(15));
    expect(lines(s.outP).filter((l) => l.startsWith('ERROR'))).toEqual([]);
  });

  it('a process saved without its IPC namespace joins the --into-ipc-ns namespace, where its references are found', async () => {
    const s = await startScene();
    const images = await checkpointScene(s, ['--exclude', 'ipc-ns']);
    const pins = cleanup.pins(join(s.dir, 'pins'));
    expect((await crAsync(['restore', '-D', images.ipc, '--pin-ns', pins])).status).toBe(0);
    const producer = s.producer.pid!;
    // Without --into-ipc-ns it would go into cr's own namespace, which does not hold its segment.
    const own = await crAsync(['restore', '-D', images.producer, '--detach']);
    expect(own.status).toBe(5);
    expect(own.stderr).toMatch(/sysvipc-shm:0 \(shm id 0, key 0x00005150, size 1024, used by mm:\d+\): (no shm with id=0 in|shm id 0 in) cr's own IPC namespace/);
    expect(existsSync(`/proc/${producer}`)).toBe(false);

    await restoreDetached(cleanup, images.producer, producer, ['--into-ipc-ns', join(pins, 'ipc')]);
    await restoreDetached(cleanup, images.consumer, s.consumer.pid!, ['--into-ipc-ns', join(pins, 'ipc')]);
    expect(statSync(`/proc/${producer}/ns/ipc`).ino).toBe(statSync(join(pins, 'ipc')).ino);
    send(join(pins, 'ipc'), 2, 5);
    await waitForLine(s.outP, /^sent 15$/);
    send(join(pins, 'ipc'), 3, 0);
    await waitForLine(s.outC, /^drained 15$/);
    expect(items(s.outC)).toEqual(expectedItems(15));
  });

  it('the same images, restored where the IPC objects are not, fail naming them and leave nothing behind', async () => {
    const s = await startScene();
    const images = await checkpointScene(s);
    const producer = s.producer.pid!;
    const consumer = s.consumer.pid!;

    // Without --into-ipc-ns, the producer's image would go into a new, empty IPC namespace.
    const pins = cleanup.pins(join(s.dir, 'pins'));
    const alone = await crAsync(['restore', '-D', images.producer, '--detach', '--pin-ns', pins]);
    expect(alone.status).toBe(5);
    expect(alone.stderr).toMatch(/^cr: cannot restore .*producer-img: it refers to objects it did not save, which must exist; nothing was changed:$/m);
    expect(alone.stderr).toMatch(
      new RegExp(`^ {2}sysvipc-shm:(\\d+) \\(shm id \\1, key 0x00005150, size 1024, used by mm:${producer}\\): no shm with id=\\1 in the new IPC namespace restored from ipc-ns:\\d+, which starts empty; restore into the IPC namespace that holds it with --into-ipc-ns PATH$`, 'm'),
    );
    expect(alone.stderr).toMatch(/^ {2}sysvipc-msg:(\d+) \(msg id \1, key 0x00005151, marked external\): no msg with id=\1 in the new IPC namespace/m);
    expect(existsSync(`/proc/${producer}`)).toBe(false);
    expect(existsSync(pins)).toBe(false);

    // An existing namespace that lacks them: same refusal, and the namespace stays empty.
    const holder = await startUntilReady('unshare', ['--ipc', 'sh', '-c', 'echo ready; exec sleep 1000'], cleanup);
    const empty = `/proc/${holder.pid}/ns/ipc`;
    const into = await crAsync(['restore', '-D', images.consumer, '--detach', '--into-ipc-ns', empty]);
    expect(into.status).toBe(5);
    expect(into.stderr).toContain(`sysvipc-shm:0 (shm id 0, key 0x00005150, size 1024, used by mm:${consumer}): no shm with id=0 in ${empty}; restore it there first`);
    expect(into.stderr).toContain(`sysvipc-msg:0 (msg id 0, key 0x00005151, marked external): no msg with id=0 in ${empty}; restore it there first`);
    expect(existsSync(`/proc/${consumer}`)).toBe(false);
    expect(ipcObjects(empty)).toEqual([]);

    // Once the IPC image is restored there, the same image restores.
    expect((await crAsync(['restore', '-D', images.ipc, '--into-ipc-ns', empty])).status).toBe(0);
    await restoreDetached(cleanup, images.consumer, consumer, ['--into-ipc-ns', empty]);
    send(empty, 3, 0);
    await waitForLine(s.outC, /^drained 10$/);
    expect(items(s.outC)).toEqual(expectedItems(10));
  });

  it('--map-external attaches another live segment of the same size, and refuses what is not safe', async () => {
    const s = await startScene();
    const images = await checkpointScene(s);
    const producer = s.producer.pid!;
    const holder = await startUntilReady('unshare', ['--ipc', 'sh', '-c', 'echo ready; exec sleep 1000'], cleanup);
    const ns = `/proc/${holder.pid}/ns/ipc`;
    expect((await crAsync(['restore', '-D', images.ipc, '--into-ipc-ns', ns])).status).toBe(0);
    const other = (bytes: number) => Number(/id: (\d+)/.exec(nsenterOut(ns, ['ipcmk', '-M', String(bytes)]))![1]);
    const bigger = other(2048);
    const same = other(1024);
    const queue = Number(/id: (\d+)/.exec(nsenterOut(ns, ['ipcmk', '-Q']))![1]);

    const tooBig = await crAsync(['restore', '-D', images.producer, '--detach', '--into-ipc-ns', ns, '--map-external', `sysvipc-shm:key=0x5150=id=${bigger}`]);
    expect(tooBig.status).toBe(5);
    expect(tooBig.stderr).toContain(`sysvipc-shm:0 (shm id 0, key 0x00005150, size 1024, used by mm:${producer}): refusing --map-external to shm id ${bigger} in ${ns}: it has size 2048 (saved: 1024)`);
    const otherQueue = await crAsync(['restore', '-D', images.producer, '--detach', '--into-ipc-ns', ns, '--map-external', `sysvipc-msg:id=0=id=${queue}`]);
    expect(otherQueue.status).toBe(5);
    expect(otherQueue.stderr).toContain(`the program holds msg id 0 itself and cr cannot change that`);
    const noSuch = await crAsync(['restore', '-D', images.producer, '--detach', '--into-ipc-ns', ns, '--map-external', 'sysvipc-shm:id=9=id=1']);
    expect(noSuch.status).toBe(2);
    expect(noSuch.stderr).toMatch(/the image has no external reference of type sysvipc-shm with id=9; the image's external references: sysvipc-msg:0 \(id=0,key=0x00005151\), sysvipc-shm:0 \(id=0,key=0x00005150,size=1024\)/);
    const malformed = await crAsync(['restore', '-D', images.producer, '--map-external', 'sysvipc-shm:5:7']);
    expect(malformed.status).toBe(2);
    expect(malformed.stderr).toContain('expected TYPE:ATTR=VALUE=ATTR=VALUE');
    expect(existsSync(`/proc/${producer}`)).toBe(false);

    await restoreDetached(cleanup, images.producer, producer, ['--into-ipc-ns', ns, '--map-external', `sysvipc-shm:id=0=id=${same}`]);
    const attached = readFileSync(`/proc/${producer}/maps`, 'utf8').split('\n').filter((l) => l.includes('/SYSV'));
    expect(attached.map((l) => Number(l.trim().split(/\s+/)[4]))).toEqual([same]);
  });
});

describe('choosing what is saved', () => {
  interface Decided {
    objects: { key: string; type: string; policy: { decision: string; rule: string; source: string }; reference?: { usedBy: string[] } }[];
    advice?: { file: string };
  }
  const plan = async (pid: number, extra: string[] = [], cwd?: string): Promise<Decided> => {
    const r = await crAsync(['checkpoint', String(pid), '--dry-run', '--json', ...extra], { cwd });
    if (r.status !== 0) throw new Error(`dry run failed (${r.status}): ${r.stderr}${r.stdout}`);
    return JSON.parse(r.stdout) as Decided;
  };
  const byType = (d: Decided) => Object.fromEntries(d.objects.filter((o) => !o.type.startsWith('files')).map((o) => [o.type, o.policy]));
  const adviceFiles = () => (existsSync(rootAdvice()) ? readdirSync(rootAdvice()) : []);

  it('advice written by the program itself changes what is saved, and the image records it', async () => {
    const s = await startScene();
    const pid = s.producer.pid!;
    const [file] = adviceFiles().filter((f) => f.startsWith(`${pid}-`));
    expect(file).toMatch(new RegExp(`^${pid}-\\d+\\.json$`));
    const source = `advice ${join(rootAdvice(), file!)}`;

    const advised = byType(await plan(pid));
    expect(advised['sysvipc-shm']).toEqual({ decision: 'external', rule: `type sysvipc: excluded, but used by mm:${pid}`, source });
    expect(advised['sysvipc-msg']).toEqual({ decision: 'external', rule: 'object sysvipc-msg key=0x00005151', source });
    // A flag beats advice of the same kind; an object rule still beats a type rule, wherever they come from.
    expect(byType(await plan(pid, ['--include', 'sysvipc-msg:id=0']))['sysvipc-msg']).toEqual({ decision: 'include', rule: 'object sysvipc-msg id=0', source: 'flag --include' });
    expect(byType(await plan(pid, ['--include', 'sysvipc-msg']))['sysvipc-msg']!.source).toBe(source);

    const advisedImg = join(s.dir, 'advised');
    expect((await crAsync(['checkpoint', String(pid), '-D', advisedImg])).status).toBe(0);
    const inspected = await crAsync(['inspect', advisedImg, '--no-records']);
    expect(inspected.stdout).toContain(`advice     ${join(rootAdvice(), file!)}\n             exclude   sysvipc\n             external  sysvipc-msg:key=0x5151\n`);
    expect(inspected.stdout).toMatch(new RegExp(`^sysvipc-shm:0 +id=0,key=0x00005150,size=1024 +mm:${pid} *$`, 'm'));
    expect(readdirSync(join(advisedImg, 'records')).sort()).toEqual(['files', 'ipc-ns', 'mm', 'tasks']);

    // The same process without its advice: its IPC objects are saved with it.
    rmSync(join(rootAdvice(), file!));
    const plain = byType(await plan(pid));
    expect(plain['sysvipc-shm']).toEqual({ decision: 'include', rule: 'default', source: 'default' });
    const plainImg = join(s.dir, 'plain');
    expect((await crAsync(['checkpoint', String(pid), '-D', plainImg])).status).toBe(0);
    expect(readdirSync(join(plainImg, 'records')).sort()).toEqual(['files', 'ipc-ns', 'mm', 'sysvipc-msg', 'sysvipc-shm', 'tasks']);
    expect(JSON.parse(readFileSync(join(plainImg, 'manifest.json'), 'utf8')).advice).toBeUndefined();
  });

  it('cr advise records advice by PID and start time; a file for another start time is not this process\'s', async () => {
    const s = await startScene();
    const pid = s.consumer.pid!;
    const stale = join(rootAdvice(), `${pid}-1.json`);
    writeFileSync(stale, JSON.stringify({ exclude: ['mm'] }));
    expect(byType(await plan(pid)).mm!.decision).toBe('include');

    const given = await crAsync(['advise', String(pid), '--exclude', 'sysvipc-shm', '--include', 'sysvipc-shm:key=0x5150', '--external', 'sysvipc-msg']);
    expect(given.status).toBe(0);
    expect(given.stdout).toMatch(new RegExp(`^advice for PID ${pid} \\(prodcons\\) in ${rootAdvice()}/${pid}-\\d+\\.json:\n  include   sysvipc-shm:key=0x5150\n  exclude   sysvipc-shm\n  external  sysvipc-msg\n$`));
    // Advice for a process that is gone was pruned.
    expect(existsSync(stale)).toBe(false);
    const advised = byType(await plan(pid));
    expect(advised['sysvipc-shm']).toMatchObject({ decision: 'include', rule: 'object sysvipc-shm key=0x00005150' });
    expect(advised['sysvipc-msg']).toMatchObject({ decision: 'external', rule: 'type sysvipc-msg' });
    expect(advised['sysvipc-msg']!.source).toMatch(/^advice /);

    expect((await crAsync(['advise', String(pid), '--clear'])).stdout).toBe(`PID ${pid} (prodcons) has no advice now\n`);
    expect(byType(await plan(pid))['sysvipc-msg']!.decision).toBe('include');
  });

  it('bad advice is refused naming the file and key path (exit 3), an unknown type too', async () => {
    const s = await startScene();
    const pid = s.producer.pid!;
    const [file] = adviceFiles().filter((f) => f.startsWith(`${pid}-`));
    const path = join(rootAdvice(), file!);
    writeFileSync(path, JSON.stringify({ exclude: 'sysvipc', external: ['sysvipc-msg:key'] }));
    const bad = await crAsync(['checkpoint', String(pid), '--dry-run']);
    expect(bad.status).toBe(3);
    expect(bad.stderr).toBe(
      `cr: invalid advice in ${path}:\n  at "exclude": found "sysvipc"; expected array, received string\n` +
        `  at "external[0]": found "sysvipc-msg:key"; a type such as "sysvipc-shm", or a type and selector such as "sysvipc-shm:key=0x1234" or "files:path=/var/log/*"\n`,
    );
    writeFileSync(path, JSON.stringify({ exclude: ['sysvipc-shn'] }));
    const unknown = await crAsync(['checkpoint', String(pid), '--dry-run']);
    expect(unknown.status).toBe(3);
    expect(unknown.stderr).toMatch(new RegExp(`^cr: advice ${path}: unknown resource type "sysvipc-shn"; installed types: .*; groups: namespaces, sysvipc`));
    const advise = await crAsync(['advise', String(pid), '--exclude', 'sysvipc-shn']);
    expect(advise.status).toBe(2);
    expect(advise.stderr).toMatch(/^cr: flag --exclude: unknown resource type "sysvipc-shn"/);
  });

  it('profiles, groups, path globs and namespace kinds from the config file and flags', async () => {
    const s = await startScene();
    const pid = s.producer.pid!;
    for (const f of adviceFiles()) rmSync(join(rootAdvice(), f));
    const config = join(s.dir, '.crrc.yaml');
    writeFileSync(
      config,
      [
        'checkpoint:',
        '  exclude: [sysvipc-msg]',
        'profiles:',
        '  nosysv:',
        '    checkpoint:',
        '      external: [sysvipc]',
        `      exclude: ["files:path=${s.dir}/*.out"]`,
        '  nonamespaces:',
        '    policy:',
        '      rules:',
        '        - { type: namespaces, decision: external }',
        '        - { type: namespaces, match: { kind: ipc }, decision: include }',
        '',
      ].join('\n'),
    );
    const fromFile = byType(await plan(pid, [], s.dir));
    expect(fromFile['sysvipc-msg']).toEqual({ decision: 'exclude', rule: 'type sysvipc-msg', source: `file ${config}` });

    const profiled = await plan(pid, ['--profile', 'nosysv'], s.dir);
    const profile = `profile nosysv of ${config}`;
    expect(byType(profiled)['sysvipc-shm']).toEqual({ decision: 'external', rule: 'type sysvipc; used by mm:' + pid, source: profile });
    // The profile's list replaces the file's: the queue is external, not excluded.
    expect(byType(profiled)['sysvipc-msg']).toEqual({ decision: 'external', rule: 'type sysvipc', source: profile });
    const files = Object.fromEntries(profiled.objects.filter((o) => o.type === 'files').map((o) => [o.key, o.policy.decision]));
    expect(files).toEqual({ [`files:${pid}:0`]: 'include', [`files:${pid}:1`]: 'exclude', [`files:${pid}:2`]: 'exclude' });

    const kinds = byType(await plan(pid, ['--profile', 'nonamespaces'], s.dir));
    expect(kinds['ipc-ns']).toEqual({ decision: 'include', rule: 'object namespaces kind=ipc', source: `profile nonamespaces of ${config}` });
    expect(kinds['uts-ns']).toMatchObject({ decision: 'external', rule: 'type namespaces' });

    const missing = await crAsync(['checkpoint', String(pid), '--dry-run', '--profile', 'nosuch'], { cwd: s.dir });
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe(`cr: --profile nosuch: ${config} has no profile "nosuch"; its profiles: nosysv, nonamespaces\n`);

    // The table a user reads: object, type, decision, rule, source.
    const table = await crAsync(['checkpoint', String(pid), '--dry-run', '--exclude', 'sysvipc', '--include', 'sysvipc-shm:key=0x5150'], { cwd: s.dir });
    expect(table.stdout.split('\n')[0]).toMatch(/^OBJECT +TYPE +DECISION +RULE +SOURCE *$/);
    expect(table.stdout).toMatch(/^sysvipc-shm:0 +sysvipc-shm +include +object sysvipc-shm key=0x00005150 +flag --include *$/m);
    expect(table.stdout).toMatch(/^sysvipc-msg:0 +sysvipc-msg +exclude +type sysvipc +flag --exclude *$/m);
  });
});
