import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { checkpointAndKill, restoreDetached, waitFor, waitGone } from './helpers/processes.js';
import { checkpointWhileLoaded, freePort, httpGet } from './helpers/servers.js';

/** Debian installs nginx in /usr/sbin, which a CI job's PATH may not have. */
const NGINX = existsSync('/usr/sbin/nginx') ? '/usr/sbin/nginx' : 'nginx';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** The children of process `pid`, sorted. */
function childrenOf(pid: number): number[] {
  const path = `/proc/${pid}/task/${pid}/children`;
  return existsSync(path) ? readFileSync(path, 'utf8').trim().split(' ').filter(Boolean).map(Number).sort((a, b) => a - b) : [];
}

function uidOf(pid: number): number {
  return Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]);
}

async function get(port: number, path: string): Promise<string> {
  const r = await httpGet(port, path);
  if ('error' in r) throw new Error(r.error);
  return r.body;
}

/**
 * Cleanup ends the master and its workers: those it has then and every one in `known`. Killing a
 * worker alone makes a live master start another, so a live master is stopped first; a restored
 * master is killed on its own by restoreDetached's cleanup, which leaves its workers running:
 * this is registered again after a restore, to run first.
 */
function killedWithWorkers(master: number, known: Set<number>): void {
  cleanup.add(async () => {
    let pids = [...known];
    try {
      process.kill(master, 'SIGSTOP');
      pids = [...new Set([...pids, ...childrenOf(master)]), master];
    } catch {
      // Gone already.
    }
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
    for (const pid of pids) await waitGone(pid);
  });
}

/**
 * nginx with a master and 2 workers (as nobody) in the foreground, its config, logs, pid file and
 * the file it serves all in `dir`. Cleanup kills it and its workers.
 */
async function startNginx(dir: string) {
  const port = await freePort();
  // The workers, as nobody, read the file from the test's own directory.
  chmodSync(dir, 0o755);
  mkdirSync(join(dir, 'www'));
  writeFileSync(join(dir, 'www', 'hello.txt'), `hello from nginx on ${port}\n`);
  const conf = join(dir, 'nginx.conf');
  writeFileSync(
    conf,
    [
      'daemon off;',
      'master_process on;',
      'worker_processes 2;',
      'user nobody nogroup;',
      `pid ${dir}/nginx.pid;`,
      `error_log ${dir}/error.log notice;`,
      'events { worker_connections 64; }',
      'http {',
      `  access_log ${dir}/access.log;`,
      ...['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t}_temp;`),
      `  server { listen 127.0.0.1:${port}; root ${dir}/www; }`,
      '}',
    ].join('\n'),
  );
  const args = ['-p', dir, '-e', join(dir, 'error.log'), '-c', conf];
  const master = spawn(NGINX, args, { stdio: 'ignore' });
  cleanup.process(master);
  const known = new Set<number>();
  killedWithWorkers(master.pid!, known);
  const workers = await waitFor('nginx to start 2 workers', () => (childrenOf(master.pid!).length === 2 ? childrenOf(master.pid!) : undefined), 20_000);
  workers.forEach((pid) => known.add(pid));
  return { master, workers, known, port, args };
}

describe('nginx: a master and 2 workers serving a file', () => {
  it('checkpointed with --kill and restored: the same file on the same port from the same master and workers, and a reload still works', async () => {
    const dir = cleanup.dir(tempDir());
    const { master, workers, known, port, args } = await startNginx(dir);
    const body = await get(port, '/hello.txt');
    expect(body).toBe(`hello from nginx on ${port}`);
    for (const pid of workers) expect(uidOf(pid)).not.toBe(0);

    const saved = await checkpointAndKill(master, join(dir, 'img'));
    expect(saved).toContain(`tasks:${workers[0]}`);
    expect(saved).toContain(`tasks:${workers[1]}`);
    for (const pid of workers) await waitGone(pid);
    await restoreDetached(cleanup, join(dir, 'img'), master.pid!);
    killedWithWorkers(master.pid!, known);

    expect(childrenOf(master.pid!)).toEqual(workers);
    for (const pid of workers) expect(uidOf(pid)).toBe(uidOf(workers[0]!));
    for (let i = 0; i < 4; i++) expect(await get(port, '/hello.txt')).toBe(body);

    // The master still hears signals and talks to its workers over their channels: a reload
    // starts two new workers and tells the old ones to quit.
    const reload = spawnSync(NGINX, [...args, '-s', 'reload'], { encoding: 'utf8' });
    expect(reload.status).toBe(0);
    const fresh = await waitFor('the reload to replace both workers', () => {
      const now = childrenOf(master.pid!);
      return now.length === 2 && now.every((pid) => !workers.includes(pid)) ? now : undefined;
    }, 30_000);
    fresh.forEach((pid) => known.add(pid));
    expect(await get(port, '/hello.txt')).toBe(body);
    const log = readFileSync(join(dir, 'error.log'), 'utf8');
    expect(log).toContain('reconfiguring');
    expect(log).not.toMatch(/\[(alert|emerg|crit)\]/);
  });

  it('checkpointed while curl fetches the file again and again: none fails, it serves on, and the image restores', async () => {
    const dir = cleanup.dir(tempDir());
    const { master, workers, known, port } = await startNginx(dir);
    const { image, stdout, answers } = await checkpointWhileLoaded(cleanup, master.pid!, join(dir, 'img'), () => get(port, '/hello.txt'));
    expect(stdout).toContain(`tasks:${workers[1]}`);
    expect(new Set(answers)).toEqual(new Set([`hello from nginx on ${port}`]));
    expect(childrenOf(master.pid!)).toEqual(workers);

    const exited = new Promise((ok) => master.once('exit', ok));
    for (const pid of [master.pid!, ...workers]) process.kill(pid, 'SIGKILL');
    await exited;
    for (const pid of workers) await waitGone(pid);
    await restoreDetached(cleanup, image, master.pid!);
    killedWithWorkers(master.pid!, known);
    expect(childrenOf(master.pid!)).toEqual(workers);
    expect(await get(port, '/hello.txt')).toBe(`hello from nginx on ${port}`);
  });
});
