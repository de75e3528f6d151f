import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';
import { compileFixture, processState, sleep, tracerOf, waitFor, waitForLine } from './helpers/processes.js';

const BIN = join(REPO, 'cli', 'bin', 'run.js');
/** SIGUSR2 and SIGWINCH, as proof.c blocks them (bit N-1 for signal N). */
const PROOF_MASK = ((1n << 11n) | (1n << 27n)).toString(16).padStart(16, '0');
/** A seeded generator, so that a failing run can be repeated moment for moment. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

let dir: string;
let proof: string;
const cleanup = new Cleanup();

beforeAll(() => {
  dir = tempDir('cr-interrupt-');
  proof = compileFixture('proof', dir);
  return () => rmSync(dir, { recursive: true, force: true });
});
afterEach(() => cleanup.run());

interface Target {
  child: ChildProcess;
  out: string;
  sum: string;
}

async function startProof(name: string, mode: 'busy' | 'block' = 'busy'): Promise<Target> {
  const out = join(dir, `${name}.out`);
  const fd = openSync(out, 'a');
  try {
    const child = cleanup.process(spawn(proof, mode === 'block' ? ['block'] : [], { stdio: ['pipe', fd, fd] }));
    const ready = await waitForLine(out, /^ready/);
    return { child, out, sum: ready.split('=')[1]! };
  } finally {
    closeSync(fd);
  }
}

/** Asks the target to prove its state, and checks every part of the answer. */
async function expectIntact(target: Target, id: string): Promise<void> {
  const pid = target.child.pid!;
  await waitFor(`PID ${pid} to run untraced`, () => (tracerOf(pid) === 0 && !/[tT]/.test(processState(pid) ?? 'gone') ? true : undefined), 15_000);
  target.child.stdin!.write(`${id}\n`);
  const answer = await waitForLine(target.out, new RegExp(`^${id} `), 20_000);
  expect(answer).toMatch(new RegExp(`^${id} mask=${PROOF_MASK} sum=${target.sum} broken=0 iterations=\\d+$`));
  // Checked once the target has run: a task let go while parked puts its mask back when it runs.
  expect(/^SigBlk:\s+(\S+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]).toBe(PROOF_MASK);
}

/** Starts `cr checkpoint` on the target and returns it with a promise of its exit. */
function startCheckpoint(target: Target, img: string): { cr: ChildProcess; exited: Promise<[number | null, NodeJS.Signals | null]> } {
  const child = spawn(process.execPath, [BIN, 'checkpoint', String(target.child.pid), '-D', img], { stdio: ['ignore', 'pipe', 'pipe'] });
  cleanup.process(child);
  return { cr: child, exited: once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]> };
}

/** Waits (polling fast) until cr has the target under ptrace, or cr has exited. */
async function untilTraced(pid: number, cr: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 30_000; i++) {
    if (cr.exitCode !== null || cr.signalCode !== null) return false;
    if (tracerOf(pid) !== 0) return true;
    await sleep(1);
  }
  return false;
}

describe('a checkpoint that is interrupted or killed leaves the target unharmed', () => {
  it('cr SIGKILLed at 24 random moments: the target answers every time, unblocked and intact, and no image is left', async () => {
    const next = random(Number(process.env.CR_KILL_SEED ?? 20261203));
    // One target computes in registers most of the time, the other waits in a syscall.
    const targets = [await startProof('killed-busy'), await startProof('killed-blocked', 'block')];
    const images = join(dir, 'killed-images');
    let whileTraced = 0;
    for (let round = 0; round < 24; round++) {
      const target = targets[Math.floor(round / 2) % 2]!;
      const img = join(images, `img-${round}`);
      const { cr, exited } = startCheckpoint(target, img);
      // Half the kills land at a random moment after cr has the target under ptrace, where harm
      // could be done; the rest anywhere from cr's start.
      if (round % 2 === 0 && (await untilTraced(target.child.pid!, cr))) {
        whileTraced++;
        await sleep(Math.floor(next() * 40));
      } else {
        await sleep(Math.floor(next() * 1500));
      }
      cr.kill('SIGKILL');
      await exited;
      await expectIntact(target, `kill-${round}`);
      if (existsSync(img)) expect(existsSync(join(img, 'manifest.sha256'))).toBe(true);
    }
    expect(whileTraced).toBeGreaterThan(0);

    // A later checkpoint beside them removes what the killed ones left half-written.
    const { exited } = startCheckpoint(targets[0]!, join(images, 'final'));
    expect((await exited)[0]).toBe(0);
    expect(readdirSync(images).filter((n) => n.includes('.cr-partial-'))).toEqual([]);
    for (const target of targets) await expectIntact(target, 'after');
  }, 300_000);

  it.each(['SIGINT', 'SIGTERM', 'SIGHUP'] as const)('%s while the target is frozen: cr lets it go, writes nothing and exits 130', async (name) => {
    const target = await startProof(name);
    const img = join(dir, `${name}-img`);
    const { cr, exited } = startCheckpoint(target, img);
    let stderr = '';
    cr.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    expect(await untilTraced(target.child.pid!, cr)).toBe(true);
    cr.kill(name);
    const [code] = await exited;
    await expectIntact(target, name);
    // The signal can come too late to stop a checkpoint that was about to finish.
    if (code === 0) return;
    expect(code).toBe(130);
    expect(stderr).toBe(`cr: checkpoint interrupted by ${name}; the target was let go and no image was written\n`);
    expect(existsSync(img)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes('.cr-partial-'))).toEqual([]);
  });
});

describe('Ctrl-Z during a checkpoint', () => {
  it('SIGTSTP while the target is frozen: cr finishes with the target first, then stops; it exits once continued', async () => {
    const target = await startProof('tstp');
    const img = join(dir, 'tstp-img');
    const { cr, exited } = startCheckpoint(target, img);
    expect(await untilTraced(target.child.pid!, cr)).toBe(true);
    cr.kill('SIGTSTP');
    // The target runs again, untraced, while cr is stopped.
    await waitFor(`cr (PID ${cr.pid}) to stop itself`, () => (processState(cr.pid!) === 'T' || cr.exitCode !== null ? true : undefined), 30_000);
    await expectIntact(target, 'tstp');
    cr.kill('SIGCONT');
    const [code] = await exited;
    expect(code).toBe(0);
    expect(existsSync(join(img, 'manifest.sha256'))).toBe(true);
  });
});

describe('a restore that is interrupted or killed leaves no half-restored process', () => {
  it.each(['SIGKILL', 'SIGINT'] as const)('%s once the process exists: it is removed again', async (name) => {
    const target = await startProof(`restore-${name}`);
    const pid = target.child.pid!;
    const img = join(dir, `restore-${name}-img`);
    const exitedTarget = once(target.child, 'exit');
    const saved = spawn(process.execPath, [BIN, 'checkpoint', String(pid), '-D', img, '--kill'], { stdio: 'ignore' });
    expect((await once(saved, 'exit'))[0]).toBe(0);
    await exitedTarget;

    const restore = spawn(process.execPath, [BIN, 'restore', '-D', img, '--detach'], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanup.process(restore);
    let stderr = '';
    restore.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = once(restore, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
    await waitFor('the restored process to exist under ptrace', () => (existsSync(`/proc/${pid}`) && tracerOf(pid) !== 0 ? true : undefined), 30_000);
    restore.kill(name);
    const [code] = await exited;
    cleanup.orphan(pid);
    // SIGINT can come too late to stop a restore that was about to finish: the process runs.
    if (code === 0) return;
    await waitFor(`PID ${pid} to be gone`, () => (existsSync(`/proc/${pid}`) ? undefined : true), 30_000);
    if (name === 'SIGINT') {
      expect(code).toBe(130);
      expect(stderr).toBe('cr: restore interrupted by SIGINT; everything restored so far was removed\n');
    }
  });
});

describe('the kernel puts a parked task back by itself', () => {
  // A process that seizes the target through cr's kernel layer, runs remote syscalls in it, and
  // dies by SIGKILL with the target parked: exactly what a killed cr leaves behind.
  const dieParked = (pid: number, calls: boolean) =>
    `import { Kernel } from '@cr/core';
     const task = new Kernel().seize(${pid});
     if (${calls}) { for (let s = 1; s <= 31; s++) if (s !== 9 && s !== 19) task.getSignalAction(s); task.getAltStack(); task.getItimer(0); task.brk(0n); }
     process.kill(process.pid, 'SIGKILL');`;

  it.each([
    ['computing in registers', 'busy', false],
    ['computing in registers, after remote syscalls', 'busy', true],
    ['blocked in poll()', 'block', false],
    ['blocked in poll(), after remote syscalls', 'block', true],
  ] as const)('a task %s', async (_what, mode, calls) => {
    const target = await startProof(`parked-${mode}-${calls}`, mode);
    for (let round = 0; round < 3; round++) {
      const killer = spawn(process.execPath, ['--input-type=module', '-e', dieParked(target.child.pid!, calls)], { cwd: join(REPO, 'cli'), stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      killer.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      const [, signal] = await once(killer, 'exit');
      expect(stderr).toBe('');
      expect(signal).toBe('SIGKILL');
      await expectIntact(target, `parked-${round}`);
    }
  });
});
