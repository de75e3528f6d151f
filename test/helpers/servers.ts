import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { expect } from 'vitest';
import type { Cleanup } from './cli.js';
import { crAsync } from './processes.js';

/** A TCP port nobody listens on now. */
export function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once('error', fail);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => ok(port));
    });
  });
}

export interface ClientResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs a client command (curl, redis-cli) to its end without blocking this process's event loop. */
export function runClient(command: string, args: string[]): Promise<ClientResult> {
  return new Promise((ok, fail) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.once('error', fail);
    child.once('close', (code, signal) => ok({ status: code ?? (signal ? 128 : -1), stdout: stdout.trim(), stderr }));
  });
}

/** `curl` GET of a path on 127.0.0.1:port, one connection, with a generous bound: its body, or why it failed. */
export async function httpGet(port: number, path: string): Promise<{ body: string } | { error: string }> {
  const r = await runClient('curl', ['-sS', '--max-time', '60', `http://127.0.0.1:${port}${path}`]);
  return r.status === 0 && r.stderr === '' ? { body: r.stdout } : { error: `curl exit ${r.status}: ${r.stderr.trim()}` };
}

/**
 * A client making requests one after another, each a new process with a new connection, until
 * stopped: `request` returns the answer, or throws why the request failed.
 */
export class LoadLoop<T> {
  readonly answers: T[] = [];
  readonly failures: string[] = [];
  private stopping = false;
  private readonly running: Promise<void>;

  constructor(request: () => Promise<T>) {
    this.running = (async () => {
      while (!this.stopping) {
        try {
          this.answers.push(await request());
        } catch (err) {
          this.failures.push(String(err));
        }
      }
    })();
  }

  /** Waits until `count` more requests have been answered or failed (bounded generously). */
  async more(count: number, ms = 60_000): Promise<void> {
    const target = this.answers.length + this.failures.length + count;
    for (let waited = 0; this.answers.length + this.failures.length < target; waited += 20) {
      if (waited >= ms) throw new Error(`timed out after ${ms} ms waiting for ${count} requests of the load loop`);
      await new Promise((ok) => setTimeout(ok, 20));
    }
  }

  /** Lets the request under way finish, and makes no more. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.running;
  }
}

/**
 * Checkpoints `pid` (and its tree) without --kill while clients talk to it; the image is in
 * `${img}` or, after refusals, `${img}-2` … (returned with cr's output). A connection the server
 * holds at the freeze (one it accepted and is answering, or closing) is refused until cr has
 * --tcp-established, and a refused checkpoint leaves the server running as it was: it is tried
 * again, up to 20 times, for a moment when the server holds none.
 */
export async function checkpointUnderLoad(pid: number, img: string): Promise<{ image: string; stdout: string; stderr: string; refused: number }> {
  for (let attempt = 1; ; attempt++) {
    const image = attempt === 1 ? img : `${img}-${attempt}`;
    const r = await crAsync(['checkpoint', String(pid), '-D', image]);
    if (r.status === 0) return { image, stdout: r.stdout, stderr: r.stderr, refused: attempt - 1 };
    const reasons = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('cr: warning:') && !/objects cannot be checkpointed:$/.test(l));
    const inFlight = r.status === 7 && reasons.every((l) => /is (an established TCP connection|a TCP connection in state) /.test(l));
    if (!inFlight || attempt === 20) throw new Error(`cr checkpoint ${pid} failed (${r.status}) on try ${attempt}: ${r.stderr}${r.stdout}`);
  }
}

/**
 * Checkpoints `pid` without --kill while `request` runs in a loop (see LoadLoop and
 * checkpointUnderLoad), with requests answered before the checkpoint and after it; none may
 * fail. Returns the image, every answer in order, and how many were in before and when the
 * checkpoint returned.
 */
export async function checkpointWhileLoaded<T>(cleanup: Cleanup, pid: number, img: string, request: () => Promise<T>) {
  const load = new LoadLoop(request);
  cleanup.add(() => load.stop());
  await load.more(5);
  const before = load.answers.length;
  const checkpoint = await checkpointUnderLoad(pid, img);
  const during = load.answers.length;
  await load.more(5);
  await load.stop();
  expect(load.failures).toEqual([]);
  return { ...checkpoint, answers: load.answers, before, during };
}
