// npm run bench: what cr costs, next to the raw cost of moving the same bytes in the same run.
// Cases: a 1 GiB SysV shm segment in a fresh IPC namespace, checkpointed and restored on its own;
// and a process with 1 MiB and with 1 GiB of heap, checkpointed (and killed) and restored by the cr command (and by CRIU, when given), its
// heap checked by the process itself after every restore.
// Then, on segments of the same size: compression (--compress zstd|lz4 against none, on data that
// is half text, half random) and a sparse segment (1 page in 64 written, the rest never touched).
// And trees: a process alone, with 99 children, and with 99 threads, each checkpointed and
// restored by the command, to see that cost grows linearly and that a thread costs less than a process.
// CR_BENCH_BYTES (a whole number of MiB), CR_BENCH_RUNS, CR_BENCH_DIR,
// CR_BENCH_CASES=shm,compress,sparse,process,tree,precopy; CRIU=/path/to/criu runs CRIU beside cr in the
// process and tree cases (bench/criu/build.sh builds one). The process and tree cases also run
// each command through a cr service (cr service start) the bench starts, beside cr's own runs.
import 'reflect-metadata';
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, readlinkSync, readSync, rmSync, writeSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash, randomFillSync } from 'node:crypto';
import { xxh3 } from '@node-rs/xxhash';
import { Kernel, KernelError, PR_SET_CHILD_SUBREAPER } from '@cr/core';
import { CheckpointEngine, Libc, Policy, RestoreEngine, createCrContainer, loadPlugins, PluginRegistry } from '@cr/core/engine';

const SIZE = Number(process.env.CR_BENCH_BYTES ?? 1 << 30);
const KEY = 0x0c0ffee;
const CHUNK = 8 << 20;
const MB = 1e6;

const RUNS = Number(process.env.CR_BENCH_RUNS ?? 3);
const CASES = (process.env.CR_BENCH_CASES ?? 'shm,compress,sparse,process,tree,precopy').split(',');
const MIB = 1 << 20;
const CR = join(import.meta.dirname, '..', 'cli', 'bin', 'run.js');

/**
 * What the bench must undo, newest first: run by main's finally, and on SIGINT/SIGTERM/SIGHUP
 * (then the bench exits 128 + the signal).
 */
const cleanups = [];
function cleanUp() {
  for (const undo of cleanups.splice(0).reverse()) {
    try {
      undo();
    } catch (err) {
      console.error(`cr bench: cleaning up: ${err.message}`);
    }
  }
}
for (const [signal, number] of [['SIGINT', 2], ['SIGTERM', 15], ['SIGHUP', 1]]) {
  process.once(signal, () => {
    cleanUp();
    process.exit(128 + number);
  });
}

const seconds = (start) => Number(process.hrtime.bigint() - start) / 1e9;

/**
 * Best of RUNS timed runs after one untimed warm-up: first touches of memory are slow on VMs.
 * `prepare`, untimed, runs before each run. A run that returns a number has timed itself (a
 * command, timed from its start to its exit).
 */
async function best(run, reset, prepare = () => {}) {
  let fastest = Infinity;
  for (let i = 0; i <= RUNS; i++) {
    await prepare();
    const t = process.hrtime.bigint();
    const timed = await run();
    const s = typeof timed === 'number' ? timed : seconds(t);
    if (i > 0) fastest = Math.min(fastest, s);
    await reset();
  }
  return fastest;
}
const rate = (s) => `${(SIZE / MB / s).toFixed(0)} MB/s`;

async function shmBench(dir) {
  const kernel = new Kernel();
  const ns = kernel.namespaces.create('ipc');
  cleanups.push(() => ns.close());
  const pin = join(dir, 'ipc');
  let pinnedRestore;
  cleanups.push(() => {
    if (pinnedRestore) {
      try {
        kernel.namespaces.unpin(join(pinnedRestore, 'ipc'));
      } catch {
        // Restore failed before pinning: nothing to release.
      }
    }
  });
  {
    kernel.namespaces.pin(ns, pin);
    cleanups.push(() => kernel.namespaces.unpin(pin));
    const shmid = kernel.namespaces.within(ns, () => {
      kernel.sysctl.write('kernel.shmmax', String(SIZE));
      return kernel.sysvipc.shmCreate(KEY, SIZE, 0o600);
    });
    // Populated at once, as cr populates what it saves: page faults one by one cost far more on a VM.
    const attach = () => {
      const mapping = kernel.namespaces.within(ns, () => kernel.sysvipc.shmAttach(shmid, SIZE, true));
      mapping.populate({ offset: 0, length: SIZE });
      return mapping;
    };
    const segment = kernel.namespaces.within(ns, () => kernel.sysvipc.shmAttach(shmid, SIZE, false));
    segment.populate({ offset: 0, length: SIZE });
    const view = segment.view();
    for (let off = 0; off < SIZE; off += CHUNK) randomFillSync(view, off, Math.min(CHUNK, SIZE - off));

    // Raw cost: the same bytes from the segment to a file (attaching it, as any reader of
    // another process's segment must), and from a file back into fresh memory.
    const rawPath = join(dir, 'raw.bin');
    const rawWrite = await best(
      () => {
        const mapping = attach();
        const bytes = mapping.view();
        const fd = openSync(rawPath, 'w', 0o600);
        for (let off = 0; off < SIZE; off += CHUNK) writeSync(fd, bytes, off, Math.min(CHUNK, SIZE - off));
        closeSync(fd);
        mapping.detach();
      },
      () => rmSync(rawPath),
    );
    // What checksumming the same bytes costs on its own (no I/O): blobs carry xxh3-64 digests,
    // records and the manifest sha256. Shown so that the choice stays visible in every run.
    // Over the mapping made above, already populated, so these rows time the hash alone.
    const digestAll = (update) => {
      for (let off = 0; off < SIZE; off += CHUNK) update(view.subarray(off, Math.min(off + CHUNK, SIZE)));
    };
    const sha256Only = await best(
      () => {
        const hash = createHash('sha256');
        digestAll((chunk) => hash.update(chunk));
        hash.digest('hex');
      },
      () => {},
    );
    const xxh3Only = await best(
      () => {
        const hash = xxh3.Xxh3.withSeed(0n);
        digestAll((chunk) => hash.update(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength)));
        hash.digest();
      },
      () => {},
    );
    // Written once more, untimed, as the source of the raw read.
    const src = openSync(rawPath, 'w', 0o600);
    for (let off = 0; off < SIZE; off += CHUNK) writeSync(src, view, off, Math.min(CHUNK, SIZE - off));
    closeSync(src);
    const rawRead = await best(
      () => {
        // Fresh memory each run, as a restored segment is.
        const back = new Uint8Array(SIZE);
        const fd = openSync(rawPath, 'r');
        for (let off = 0; off < SIZE; ) off += readSync(fd, back, off, Math.min(CHUNK, SIZE - off), off);
        closeSync(fd);
      },
      () => {},
    );
    rmSync(rawPath);
    segment.detach();

    const container = createCrContainer();
    // ipc-ns also collects from tasks (a process's namespace), so tasks must be loaded too.
    await loadPlugins(['@cr/plugin-tasks', '@cr/plugin-ipc-ns', '@cr/plugin-sysvipc-shm'], [join(import.meta.dirname, '..', 'cli')], container, container.resolve(PluginRegistry));
    const img = join(dir, 'img');
    const rssBefore = process.memoryUsage().rss;
    let rssPeak = rssBefore;
    const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
    const checkpoint = await best(
      () => container.resolve(CheckpointEngine).checkpoint({ target: { kind: 'ipc-ns', path: pin }, imageDir: img, policy: new Policy() }),
      () => rmSync(img, { recursive: true, force: true }),
    );
    clearInterval(sampler);
    await container.resolve(CheckpointEngine).checkpoint({ target: { kind: 'ipc-ns', path: pin }, imageDir: img, policy: new Policy() });

    pinnedRestore = join(dir, 'restored');
    const restore = await best(
      () => container.resolve(RestoreEngine).restore({ imageDir: img, options: { pinDir: pinnedRestore } }),
      () => kernel.namespaces.unpin(join(pinnedRestore, 'ipc')),
    );
    pinnedRestore = undefined;
    rmSync(img, { recursive: true });

    const rows = [
      ['raw copy, segment → file (shmat+write)', rawWrite, rate(rawWrite), '1.00'],
      ['cr checkpoint', checkpoint, rate(checkpoint), (rawWrite / checkpoint).toFixed(2)],
      ['  for reference: sha256 only, no I/O, no shmat', sha256Only, rate(sha256Only), (rawWrite / sha256Only).toFixed(2)],
      ['  for reference: xxh3-64 only (blobs), no I/O, no shmat', xxh3Only, rate(xxh3Only), (rawWrite / xxh3Only).toFixed(2)],
      ['raw copy, file → memory', rawRead, rate(rawRead), '1.00'],
      ['cr restore', restore, rate(restore), (rawRead / restore).toFixed(2)],
    ];
    console.log(`cr bench: SysV shm segment of ${SIZE / MIB} MiB, Linux ${release()}`);
    console.log(`${'case'.padEnd(56)}seconds   throughput   vs raw`);
    for (const [name, s, r, ratio] of rows) console.log(`${name.padEnd(56)}${s.toFixed(3).padStart(7)}   ${r.padStart(10)}   ${ratio.padStart(6)}`);
    console.log(`best of ${RUNS} runs after a warm-up each; checkpoint/raw and restore/raw are throughput ratios (1.00 = as fast as the raw copy)`);
    console.log(`cr's RSS grew by at most ${((rssPeak - rssBefore) / MIB).toFixed(0)} MiB while checkpointing (the attached segment counts: its pages are shared, not copied)`);
  }
}

/**
 * A fresh IPC namespace, pinned in `dir`, with one segment of SIZE bytes (key KEY) that `fill`
 * fills through a writable attachment; and the plugins that checkpoint and restore it.
 */
async function segmentSetup(dir, name, fill) {
  const kernel = new Kernel();
  const ns = kernel.namespaces.create('ipc');
  cleanups.push(() => ns.close());
  const pin = join(dir, `${name}-ipc`);
  kernel.namespaces.pin(ns, pin);
  cleanups.push(() => kernel.namespaces.unpin(pin));
  const shmid = kernel.namespaces.within(ns, () => {
    kernel.sysctl.write('kernel.shmmax', String(SIZE));
    return kernel.sysvipc.shmCreate(KEY, SIZE, 0o600);
  });
  const segment = kernel.namespaces.within(ns, () => kernel.sysvipc.shmAttach(shmid, SIZE, false));
  fill(segment);
  segment.detach();
  const container = createCrContainer();
  await loadPlugins(['@cr/plugin-tasks', '@cr/plugin-ipc-ns', '@cr/plugin-sysvipc-shm'], [join(import.meta.dirname, '..', 'cli')], container, container.resolve(PluginRegistry));
  const restoredPin = join(dir, `${name}-restored`);
  cleanups.push(() => {
    try {
      kernel.namespaces.unpin(join(restoredPin, 'ipc'));
    } catch {
      // Not restored, or already released.
    }
  });
  return {
    kernel,
    checkpoint: (img, compression) => container.resolve(CheckpointEngine).checkpoint({ target: { kind: 'ipc-ns', path: pin }, imageDir: img, policy: new Policy(), ...(compression ? { compression } : {}) }),
    restore: (img) => container.resolve(RestoreEngine).restore({ imageDir: img, options: { pinDir: restoredPin } }),
    unpinRestored: () => kernel.namespaces.unpin(join(restoredPin, 'ipc')),
    restoredNs: join(restoredPin, 'ipc'),
  };
}

/** The size of the files under `dir`, in bytes. */
function sizeOnDisk(dir) {
  return Number(spawnSync('du', ['-sb', dir], { encoding: 'utf8' }).stdout.split('\t')[0]);
}

/** Text that compresses like logs or program data do: numbered lines, some words repeated. */
function fillMixed(view) {
  const half = Math.floor(SIZE / 2 / CHUNK) * CHUNK;
  for (let off = 0; off < half; off += CHUNK) randomFillSync(view, off, Math.min(CHUNK, half - off));
  const line = (i) => `${String(i).padStart(9, '0')} request /api/items/${i % 977} status=${i % 7 === 0 ? 404 : 200} bytes=${(i * 7919) % 65536}\n`;
  for (let off = half, i = 0; off < SIZE; i++) off += Buffer.from(view.buffer, view.byteOffset + off, Math.min(100, SIZE - off)).write(line(i));
}

async function compressBench(dir) {
  const setup = await segmentSetup(dir, 'compress', (segment) => {
    segment.populate({ offset: 0, length: SIZE });
    fillMixed(segment.view());
  });
  const rows = [];
  for (const compression of [undefined, 'lz4', 'zstd']) {
    const img = join(dir, `img-${compression ?? 'none'}`);
    const checkpoint = await best(() => setup.checkpoint(img, compression), () => rmSync(img, { recursive: true, force: true }));
    await setup.checkpoint(img, compression);
    const stored = sizeOnDisk(img);
    const restore = await best(() => setup.restore(img), () => setup.unpinRestored());
    rmSync(img, { recursive: true });
    rows.push([compression ?? 'none (raw blobs)', checkpoint, restore, stored]);
  }
  console.log(`cr bench: --compress, SysV shm segment of ${SIZE / MIB} MiB, half random bytes and half text lines`);
  console.log(`${'compression'.padEnd(24)}checkpoint   throughput   restore   throughput   image size   ratio`);
  for (const [name, c, r, stored] of rows) {
    console.log(`${name.padEnd(24)}${c.toFixed(3).padStart(10)}   ${rate(c).padStart(10)}   ${r.toFixed(3).padStart(7)}   ${rate(r).padStart(10)}   ${`${(stored / MIB).toFixed(1)} MiB`.padStart(10)}   ${(SIZE / stored).toFixed(2).padStart(5)}`);
  }
  console.log(`best of ${RUNS} runs after a warm-up each; throughput is of the segment's bytes; ratio is segment size / image size`);
}

/** The rss column of /proc/sysvipc/shm for key KEY in the IPC namespace pinned at `nsPath`. */
function segmentRss(nsPath) {
  const out = spawnSync('nsenter', [`--ipc=${nsPath}`, 'cat', '/proc/sysvipc/shm'], { encoding: 'utf8' }).stdout.trim().split('\n');
  const header = out[0].trim().split(/\s+/);
  const row = out.find((l) => l.trim().split(/\s+/)[0] === String(KEY)).trim().split(/\s+/);
  return Number(row[header.indexOf('rss')]);
}

async function sparseBench(dir) {
  const PAGE = 4096;
  const setup = await segmentSetup(dir, 'sparse', (segment) => {
    const view = segment.view();
    for (let off = 0; off < SIZE; off += 64 * PAGE) randomFillSync(view, off, PAGE);
  });
  const img = join(dir, 'img-sparse');
  const checkpoint = await best(() => setup.checkpoint(img), () => rmSync(img, { recursive: true, force: true }));
  await setup.checkpoint(img);
  const stored = sizeOnDisk(img);
  const restore = await best(() => setup.restore(img), () => setup.unpinRestored());
  await setup.restore(img);
  const rss = segmentRss(setup.restoredNs);
  setup.unpinRestored();
  rmSync(img, { recursive: true });
  console.log(`cr bench: sparse SysV shm segment of ${SIZE / MIB} MiB, one page in 64 written (${SIZE / 64 / MIB} MiB), the rest never touched`);
  console.log(`cr checkpoint ${checkpoint.toFixed(3)} s, cr restore ${restore.toFixed(3)} s; image ${(stored / MIB).toFixed(1)} MiB; the restored segment takes ${(rss / MIB).toFixed(1)} MiB`);
  console.log(`best of ${RUNS} runs after a warm-up each`);
}

// --- process ----------------------------------------------------------------------------------

const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function waitFor(what, check, ms = 20_000) {
  for (let waited = 0; ; waited += 20) {
    const value = check();
    if (value !== undefined) return value;
    if (waited >= ms) throw new Error(`timed out after ${ms / 1000} s waiting for ${what}`);
    await sleep(20);
  }
}

const lines = (path) => (existsSync(path) ? readFileSync(path, 'utf8').split('\n').filter(Boolean) : []);

function exeOf(pid) {
  try {
    return readlinkSync(`/proc/${pid}/exe`);
  } catch {
    return undefined;
  }
}

/**
 * The processes the bench started (and cr restored), by PID. Each is killed at cleanup if it still
 * runs the bench's program, so that a PID reused by someone else meanwhile is left alone.
 */
class Processes {
  constructor(binary) {
    this.binary = binary;
    this.pids = new Set();
    cleanups.push(() => {
      for (const pid of this.pids) this.kill(pid);
    });
  }

  /** Starts `binary args` in its own session, output appended to `out`, and waits for its "ready" line. */
  async start(args, out) {
    const fd = openSync(out, 'a', 0o600);
    let child;
    try {
      child = spawn(this.binary, args, { stdio: ['ignore', fd, fd], detached: true });
    } finally {
      closeSync(fd);
    }
    child.once('error', () => {});
    child.unref();
    this.pids.add(child.pid);
    const ready = await waitFor(`${this.binary} ${args.join(' ')} to be ready`, () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${this.binary} ${args.join(' ')} exited early: ${lines(out).join('; ')}`);
      return lines(out).find((l) => l.startsWith('ready '));
    });
    return { pid: child.pid, words: ready.split(' ').slice(1) };
  }

  kill(pid) {
    if (exeOf(pid) === this.binary) process.kill(pid, 'SIGKILL');
    this.pids.delete(pid);
  }
}

/**
 * Waits until no process has `pid`. A restored process is the bench's child (the bench is a child
 * subreaper, and cr restore --detach leaves it behind), so the bench reaps it itself, at once: PID 1
 * would take seconds. The first one was started by Node, which reaps it.
 */
const WNOHANG = 1;
const ECHILD = 10;
function waitGone(libc, pid, reap) {
  return waitFor(`PID ${pid} to be gone`, () => {
    try {
      if (reap) libc.waitpid(pid, WNOHANG);
    } catch (err) {
      if (!(err instanceof KernelError && err.errno === ECHILD)) throw err;
    }
    return existsSync(`/proc/${pid}`) ? undefined : true;
  });
}

/** Runs a command (child-rss.js around it), in its own process group so that cleanup can end it. */
let running;
cleanups.push(() => {
  if (running) process.kill(-running.pid, 'SIGKILL');
});
function measured(command, args, env = process.env) {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [join(import.meta.dirname, 'child-rss.js'), command, ...args], { stdio: ['ignore', 'pipe', 'inherit'], detached: true, env });
    running = child;
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.once('error', fail);
    child.once('close', () => {
      running = undefined;
      try {
        const result = JSON.parse(out);
        // With --json, cr reports its error on stdout.
        if (result.status !== 0) throw new Error(`${command} ${args.join(' ')} failed (${result.status ?? result.signal}): ${(result.stderr || result.stdout).trim()}`);
        ok(result);
      } catch (err) {
        fail(err instanceof SyntaxError ? new Error(`${command} ${args.join(' ')}: no measurement (${out})`) : err);
      }
    });
  });
}

/** The environment of cr's own runs: never handed to a cr service, even if one runs on this machine. */
const ALONE = { ...process.env, CR_NO_SERVICE: '1' };

/** cr run as a user runs it: the command itself, through its launcher's #! line. */
const cr = (...args) => measured(CR, args, ALONE);

let service;
/** The bench's cr service, started by the first case that needs it. */
async function benchService(dir) {
  service ??= await startService(dir);
  return service;
}

/**
 * A cr service (cr service start) of the bench's own, on a socket in `dir`, for the rows of
 * commands handed to it: `run` runs a cr command line through it, `served` says how many commands
 * it ran and `expectServed` that it ran every one handed to it since (none ran elsewhere),
 * `peakRss` is its VmHWM. Stopped at cleanup.
 */
async function startService(dir) {
  const socketDir = join(dir, 'service');
  mkdirSync(socketDir, { mode: 0o700 });
  const socket = join(socketDir, 'cr.sock');
  const { CR_NO_SERVICE: _, ...env } = { ...process.env, CR_SERVICE_SOCKET: socket };
  const control = (...args) => {
    const result = spawnSync(CR, ['service', ...args, '--socket', socket, '--json'], { encoding: 'utf8', env: ALONE });
    if (result.status !== 0) throw new Error(`cr service ${args.join(' ')} failed (${result.status ?? result.signal}): ${(result.stderr || result.stdout).trim()}`);
    return JSON.parse(result.stdout);
  };
  const { pid } = control('start');
  cleanups.push(() => control('stop'));
  const served = () => control('status').served;
  return {
    pid,
    run: (...args) => measured(CR, args, env),
    served,
    expectServed: (before, handed, what) => {
      const ran = served() - before;
      if (ran !== handed) throw new Error(`the cr service ran ${ran} of the ${handed} ${what} handed to it: the others ran in their own process`);
    },
    peakRss: () => Number(/^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024,
  };
}

/** Runs dd, and returns how long it took from its start to its exit, in seconds. */
function dd(...args) {
  return new Promise((ok, fail) => {
    const start = process.hrtime.bigint();
    const child = spawn('dd', [...args, 'bs=8M', 'status=none'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.once('error', fail);
    child.once('exit', (status, signal) => {
      const s = seconds(start);
      if (status === 0) ok(s);
      else fail(new Error(`dd ${args.join(' ')} failed (${status ?? signal}): ${stderr.trim()}`));
    });
  });
}

/** CRIU, when the bench is given one (CRIU=/path/to/criu, as bench/criu/build.sh builds it): run beside cr, never instead of it. */
const CRIU = process.env.CRIU;

/** Runs CRIU with `args` (child-rss.js around it, as cr is); its log goes to `log`. */
function criu(log, ...args) {
  return measured(CRIU, [...args, '--shell-job', '-o', log]);
}

/**
 * The process case at 1 MiB (start-up dominates) and at CR_BENCH_BYTES (moving the bytes does),
 * each with CRIU beside cr when CRIU is set.
 */
async function processBench(dir) {
  if (SIZE % MIB !== 0) throw new Error(`CR_BENCH_BYTES must be a whole number of MiB for the process case, not ${SIZE}`);
  const binary = join(dir, 'heap');
  const built = spawnSync('cc', ['-O2', '-Wall', '-o', binary, join(import.meta.dirname, 'heap.c')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc bench/heap.c failed: ${built.error?.message ?? built.stderr}`);
  // Processes cr restores are left to the bench when cr exits, instead of to PID 1; see waitGone.
  const libc = new Libc();
  libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 'prctl(PR_SET_CHILD_SUBREAPER)');
  const processes = new Processes(binary);
  const service = await benchService(dir);
  const sizes = [...new Set([MIB, SIZE])];
  for (const [i, bytes] of sizes.entries()) {
    if (i > 0) console.log('');
    await heapBench(dir, bytes, libc, processes, service);
  }
  const startup = [];
  for (let i = 0; i <= RUNS; i++) startup.push(await cr('types', '--json'));
  const version = [];
  for (let i = 0; i <= RUNS; i++) version.push(await cr('--version'));
  const fastest = (list) => Math.min(...list.slice(1).map((r) => r.seconds));
  const rss = (list) => `${(Math.max(...list.slice(1).map((r) => r.maxRss)) / MIB).toFixed(0)} MiB`;
  console.log('');
  const { NODE_EXTRA_CA_CERTS: extraCerts, ...withoutCerts } = process.env;
  const bare = extraCerts === undefined ? '' : ` (${(await nodeAlone(withoutCerts)).toFixed(3)} s without NODE_EXTRA_CA_CERTS, which cr's launcher keeps from node)`;
  console.log(`cr start-up alone: cr types ${fastest(startup).toFixed(3)} s (peak RSS ${rss(startup)}), cr --version ${fastest(version).toFixed(3)} s (${rss(version)}); node -e 0 ${(await nodeAlone()).toFixed(3)} s${bare}`);
}

/** How long node takes to start and exit doing nothing in environment `env`: the floor under every cr command. */
async function nodeAlone(env = process.env) {
  const runs = [];
  for (let i = 0; i <= RUNS; i++) runs.push((await measured(process.execPath, ['-e', '0'], env)).seconds);
  return Math.min(...runs.slice(1));
}

/**
 * A process with `bytes` of heap: the raw copies of its bytes, then cr (checkpoint --kill, restore
 * --detach) and, when CRIU is set, CRIU (dump, restore -d) in turn, round after round, on the same
 * process: each round checkpoints the process the one before restored. After each restore the
 * process sums its heap again (SIGUSR1) and must find the sum it had at the start.
 */
async function heapBench(dir, bytes, libc, processes, service) {
  const mib = bytes / MIB;
  const rate = (s) => `${(bytes / MB / s).toFixed(0)} MB/s`;
  const out = join(dir, `heap-${mib}.out`);
  const heap = await processes.start(['heap', String(mib)], out);
  const { pid } = heap;
  const [address, expected] = heap.words;

  // Raw cost, checkpoint side: the heap's bytes from /proc/PID/mem into a file.
  const rawPath = join(dir, 'raw.bin');
  const rawCheckpoint = await best(
    () => dd(`if=/proc/${pid}/mem`, `of=${rawPath}`, 'iflag=skip_bytes,count_bytes', `skip=${BigInt(address)}`, `count=${bytes}`),
    () => rmSync(rawPath),
  );
  // Restore side: that file into the fresh, untouched memory of a new process, through its
  // /proc/PID/mem (a new sink process for each run, started untimed).
  await dd(`if=/proc/${pid}/mem`, `of=${rawPath}`, 'iflag=skip_bytes,count_bytes', `skip=${BigInt(address)}`, `count=${bytes}`);
  let sink;
  let sinks = 0;
  const rawRestore = await best(
    () => dd(`if=${rawPath}`, `of=/proc/${sink.pid}/mem`, 'oflag=seek_bytes', 'conv=notrunc', `seek=${BigInt(sink.words[0])}`),
    () => processes.kill(sink.pid),
    async () => (sink = await processes.start(['sink', String(mib)], join(dir, `sink-${mib}-${sinks++}.out`))),
  );
  rmSync(rawPath);

  // Every timed step starts right after the memory it will fill was freed (the image of the round
  // before, the killed process, the raw file, the last sink): on a VM, memory that stays free for
  // a few seconds may be handed back to the host, and touching it again then costs far more and
  // varies from run to run. Raw copies, cr and CRIU are measured alike in this respect.
  const img = join(dir, 'process-img');
  const runs = { cr: { checkpoints: [], restores: [] }, service: { checkpoints: [], restores: [] }, criu: { checkpoints: [], restores: [] } };
  const servedBefore = service.served();
  let reaped = false;
  const checkRestored = async (who, round) => {
    processes.pids.add(pid);
    const before = lines(out).length;
    process.kill(pid, 'SIGUSR1');
    const sum = await waitFor(`PID ${pid} to sum its heap after ${who}'s restore ${round}`, () => lines(out).slice(before).find((l) => l.startsWith('sum ')));
    if (sum !== `sum ${expected}`) throw new Error(`${who}'s restore ${round} is wrong: the restored process sums its heap to ${sum.slice(4)}, not ${expected} as before the checkpoint`);
    rmSync(img, { recursive: true });
  };
  for (let i = 0; i <= RUNS; i++) {
    const c = await cr('checkpoint', String(pid), '-D', img, '--kill', '--json');
    runs.cr.checkpoints.push({ seconds: c.seconds, maxRss: c.maxRss, frozenMs: JSON.parse(c.stdout).frozenMs });
    await waitGone(libc, pid, reaped);
    reaped = true;
    const r = await cr('restore', '-D', img, '--detach', '--json');
    runs.cr.restores.push({ seconds: r.seconds, maxRss: r.maxRss });
    await checkRestored('cr', i + 1);
    const sc = await service.run('checkpoint', String(pid), '-D', img, '--kill', '--json');
    runs.service.checkpoints.push({ seconds: sc.seconds, maxRss: sc.maxRss, frozenMs: JSON.parse(sc.stdout).frozenMs });
    await waitGone(libc, pid, true);
    const sr = await service.run('restore', '-D', img, '--detach', '--json');
    runs.service.restores.push({ seconds: sr.seconds, maxRss: sr.maxRss });
    await checkRestored('the cr service', i + 1);
    if (!CRIU) continue;
    mkdirSync(img);
    const d = await criu(join(dir, 'criu-dump.log'), 'dump', '-t', String(pid), '-D', img);
    runs.criu.checkpoints.push({ seconds: d.seconds, maxRss: d.maxRss });
    await waitGone(libc, pid, true);
    const u = await criu(join(dir, 'criu-restore.log'), 'restore', '-d', '-D', img);
    runs.criu.restores.push({ seconds: u.seconds, maxRss: u.maxRss });
    await checkRestored('CRIU', i + 1);
  }
  processes.kill(pid);
  service.expectServed(servedBefore, 2 * (RUNS + 1), 'commands');

  const timed = (list) => list.slice(1);
  const fastest = (list) => Math.min(...timed(list).map((r) => r.seconds));
  const rss = (list) => `${(Math.max(...timed(list).map((r) => r.maxRss)) / MIB).toFixed(0)} MiB`;
  const checkpoint = fastest(runs.cr.checkpoints);
  const restore = fastest(runs.cr.restores);
  const frozen = Math.min(...timed(runs.cr.checkpoints).map((r) => r.frozenMs));
  const serviceCheckpoint = fastest(runs.service.checkpoints);
  const serviceRestore = fastest(runs.service.restores);
  const serviceFrozen = Math.min(...timed(runs.service.checkpoints).map((r) => r.frozenMs));
  const serviceRss = `${(service.peakRss() / MIB).toFixed(0)} MiB*`;
  const row = (name, s, raw, frozenText, peak) => [name, s, rate(s), (raw / s).toFixed(2), frozenText, peak];
  const rows = [
    row('raw copy, /proc/PID/mem → file (dd bs=8M)', rawCheckpoint, rawCheckpoint, '', ''),
    row('cr checkpoint --kill (the whole command)', checkpoint, rawCheckpoint, `${frozen.toFixed(0)} ms`, rss(runs.cr.checkpoints)),
    row('cr checkpoint --kill, run by the cr service', serviceCheckpoint, rawCheckpoint, `${serviceFrozen.toFixed(0)} ms`, serviceRss),
    ...(CRIU ? [row('criu dump (the whole command)', fastest(runs.criu.checkpoints), rawCheckpoint, '-', rss(runs.criu.checkpoints))] : []),
    row('raw copy, file → new process (dd to /proc/PID/mem)', rawRestore, rawRestore, '', ''),
    row('cr restore --detach (the whole command)', restore, rawRestore, '-', rss(runs.cr.restores)),
    row('cr restore --detach, run by the cr service', serviceRestore, rawRestore, '-', serviceRss),
    ...(CRIU ? [row('criu restore -d (the whole command)', fastest(runs.criu.restores), rawRestore, '-', rss(runs.criu.restores))] : []),
  ];
  console.log(`cr bench: process with ${mib} MiB of heap (random data), Linux ${release()}${CRIU ? `, beside ${criuVersion()}` : ''}`);
  console.log(`${'case'.padEnd(56)}seconds   throughput   vs raw   frozen   peak RSS`);
  for (const [name, s, r, ratio, f, m] of rows) {
    console.log(`${name.padEnd(56)}${s.toFixed(3).padStart(7)}   ${r.padStart(10)}   ${ratio.padStart(6)}   ${f.padStart(6)}   ${m.padStart(8)}`);
  }
  if (CRIU) {
    const versus = (ck, rs) => `checkpoint ${(ck / fastest(runs.criu.checkpoints)).toFixed(2)}×, restore ${(rs / fastest(runs.criu.restores)).toFixed(2)}×, both ${((ck + rs) / (fastest(runs.criu.checkpoints) + fastest(runs.criu.restores))).toFixed(2)}× CRIU's time`;
    console.log(`cr / CRIU: ${versus(checkpoint, restore)}`);
    console.log(`cr run by the cr service / CRIU: ${versus(serviceCheckpoint, serviceRestore)}`);
  }
  console.log(`best of ${RUNS} runs after a warm-up each (frozen: the shortest; peak RSS: the largest); cr${CRIU ? ' and CRIU' : ''} run as commands (node start-up included${CRIU ? ', taking turns' : ''}),`);
  console.log(`peak RSS is getrusage(RUSAGE_CHILDREN) around the command (* the service's VmHWM, its peak over every command it ran so far); frozen is the checkpoint's frozenMs (from the freeze to the kill);`);
  console.log(`"run by the cr service": the same command line, handed by its launcher to a cr service the bench started before the first case (timed from the launcher's start to its exit);`);
  console.log(`after each of the ${RUNS + 1} restores${CRIU ? ' of each tool' : ''} (and of the service) the process summed its heap again and found the sum it started with;`);
  console.log(`on a VM, times vary from run to run (first touches of memory the host took back): compare rows of one run`);
}

function criuVersion() {
  const printed = spawnSync(CRIU, ['--version'], { encoding: 'utf8' }).stdout ?? '';
  return `CRIU ${/Version: (\S+)/.exec(printed)?.[1] ?? '(version unknown)'}`;
}

/** The PIDs below `pid`, children first found first. */
function descendantsOf(pid) {
  const found = [];
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    for (const child of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number)) found.push(child, ...descendantsOf(child));
  }
  return found;
}

/**
 * A process alone, with 99 children, and with 99 threads: checkpoint --kill and restore --detach
 * by the command, round after round, each restore checked for every process and thread.
 */
async function treeBench(dir) {
  const binary = join(dir, 'tree');
  const built = spawnSync('cc', ['-O2', '-Wall', '-pthread', '-o', binary, join(import.meta.dirname, 'tree.c')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc bench/tree.c failed: ${built.error?.message ?? built.stderr}`);
  const libc = new Libc();
  libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 'prctl(PR_SET_CHILD_SUBREAPER)');
  const processes = new Processes(binary);
  const service = await benchService(dir);
  const servedBefore = service.served();
  const shapes = [
    ['1 process, 1 thread', 'procs', 1],
    ['100 processes (a parent and 99 children)', 'procs', 100],
    ['1 process with 100 threads', 'threads', 100],
  ];
  const rows = [];
  for (const [name, mode, n] of shapes) {
    const { pid } = await processes.start([mode, String(n)], join(dir, `tree-${mode}-${n}.out`));
    const tasks = () => ({ processes: 1 + descendantsOf(pid).length, threads: readdirSync(`/proc/${pid}/task`).length });
    const shape = tasks();
    const img = join(dir, 'tree-img');
    const checkpoints = [];
    const restores = [];
    const serviceRuns = { checkpoints: [], restores: [] };
    const criuRuns = { checkpoints: [], restores: [] };
    const checkRestored = (who, round) => {
      processes.pids.add(pid);
      const now = tasks();
      if (now.processes !== shape.processes || now.threads !== shape.threads) {
        throw new Error(`${who}'s restore ${round} of ${name} is wrong: ${now.processes} process(es) and ${now.threads} thread(s), not ${shape.processes} and ${shape.threads}`);
      }
      rmSync(img, { recursive: true });
    };
    for (let i = 0; i <= RUNS; i++) {
      let pids = [pid, ...descendantsOf(pid)];
      const c = await cr('checkpoint', String(pid), '-D', img, '--kill', '--json');
      checkpoints.push({ seconds: c.seconds, frozenMs: JSON.parse(c.stdout).frozenMs });
      for (const p of pids) await waitGone(libc, p, i > 0 || p !== pid);
      const r = await cr('restore', '-D', img, '--detach', '--json');
      restores.push({ seconds: r.seconds });
      checkRestored('cr', i + 1);
      pids = [pid, ...descendantsOf(pid)];
      serviceRuns.checkpoints.push(await service.run('checkpoint', String(pid), '-D', img, '--kill', '--json'));
      for (const p of pids) await waitGone(libc, p, true);
      serviceRuns.restores.push(await service.run('restore', '-D', img, '--detach', '--json'));
      checkRestored('the cr service', i + 1);
      if (!CRIU) continue;
      pids = [pid, ...descendantsOf(pid)];
      mkdirSync(img);
      criuRuns.checkpoints.push(await criu(join(dir, 'criu-tree-dump.log'), 'dump', '-t', String(pid), '-D', img));
      for (const p of pids) await waitGone(libc, p, true);
      criuRuns.restores.push(await criu(join(dir, 'criu-tree-restore.log'), 'restore', '-d', '-D', img));
      checkRestored('CRIU', i + 1);
    }
    const pids = [pid, ...descendantsOf(pid)];
    process.kill(pid, 'SIGKILL');
    for (const p of pids.slice(1)) process.kill(p, 'SIGKILL');
    for (const p of pids) await waitGone(libc, p, true);
    processes.pids.delete(pid);
    const fastest = (list) => Math.min(...list.slice(1).map((r) => r.seconds));
    rows.push([name, fastest(checkpoints), Math.min(...checkpoints.slice(1).map((r) => r.frozenMs)), fastest(restores), fastest(serviceRuns.checkpoints), fastest(serviceRuns.restores), ...(CRIU ? [fastest(criuRuns.checkpoints), fastest(criuRuns.restores)] : [])]);
  }
  service.expectServed(servedBefore, 2 * shapes.length * (RUNS + 1), 'tree commands');
  const seconds = (s, width) => `${s.toFixed(3)} s`.padStart(width);
  console.log(`cr bench: process trees and threads, Linux ${release()}${CRIU ? `, beside ${criuVersion()}` : ''}`);
  console.log(`${'case'.padEnd(44)}checkpoint --kill   frozen    restore --detach   by the service: checkpoint  restore${CRIU ? '   criu dump   criu restore -d' : ''}`);
  for (const [name, c, f, r, sc, sr, d, u] of rows) {
    console.log(`${name.padEnd(44)}${seconds(c, 17)}   ${`${f.toFixed(0)} ms`.padStart(7)}   ${seconds(r, 16)}${seconds(sc, 28)}${seconds(sr, 9)}${CRIU ? `${seconds(d, 12)}${seconds(u, 16)}` : ''}`);
  }
  console.log(`best of ${RUNS} runs after a warm-up each; whole commands (node start-up included${CRIU ? ', cr, the cr service and CRIU taking turns' : ', cr and the cr service taking turns'}); after every restore each process and thread was there again`);
}

/**
 * Frozen time of a mostly idle process of SIZE bytes (it writes 4 pages every 2 ms), checkpointed
 * and left running, without and with --pre-copy; then one --pre-copy --kill, a restore, and the
 * restored process checks every word of its memory.
 */
async function preCopyBench(dir) {
  if (SIZE % MIB !== 0) throw new Error(`CR_BENCH_BYTES must be a whole number of MiB for the pre-copy case, not ${SIZE}`);
  const binary = join(dir, 'dirtier');
  const built = spawnSync('cc', ['-O2', '-Wall', '-o', binary, join(import.meta.dirname, '..', 'test', 'fixtures', 'dirtier.c')], { encoding: 'utf8' });
  if (built.status !== 0) throw new Error(`cc test/fixtures/dirtier.c failed: ${built.error?.message ?? built.stderr}`);
  const libc = new Libc();
  libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 'prctl(PR_SET_CHILD_SUBREAPER)');
  const processes = new Processes(binary);
  const out = join(dir, 'dirtier.out');
  const { pid } = await processes.start([String(SIZE / MIB), '0', '0', '4'], out);
  const img = join(dir, 'precopy-img');
  const rows = [];
  for (const [name, extra] of [['plain', []], ['--pre-copy', ['--pre-copy']]]) {
    const runs = [];
    for (let i = 0; i <= RUNS; i++) {
      const c = await cr('checkpoint', String(pid), '-D', img, '--json', ...extra);
      const result = JSON.parse(c.stdout);
      runs.push({ seconds: c.seconds, frozenMs: result.frozenMs, rounds: result.preCopy?.rounds.map((r) => r.copied) ?? [] });
      rmSync(img, { recursive: true });
    }
    const measured = runs.slice(1);
    const best = measured.reduce((a, b) => (b.frozenMs < a.frozenMs ? b : a));
    rows.push([name, Math.min(...measured.map((r) => r.seconds)), best.frozenMs, best.rounds]);
  }
  await cr('checkpoint', String(pid), '-D', img, '--pre-copy', '--kill', '--json');
  await waitGone(libc, pid, false);
  await cr('restore', '-D', img, '--detach', '--json');
  processes.pids.add(pid);
  process.kill(pid, 'SIGUSR1');
  const checked = await waitFor(`PID ${pid} to check its memory after the restore`, () => lines(out).find((l) => /^(same|DIFFERENT) /.test(l)), 60_000);
  if (!checked.startsWith('same ')) throw new Error(`the process restored from a --pre-copy image finds its memory changed: ${checked}`);
  const [plain, pre] = rows;
  console.log(`cr bench: pre-copy of a mostly idle ${(SIZE / MIB).toFixed(0)} MiB process (4 pages written every 2 ms), Linux ${release()}`);
  console.log(`${'checkpoint (left running)'.padEnd(28)}${'whole command'.padStart(14)}${'frozen'.padStart(12)}   pages copied per pre-copy round`);
  for (const [name, s, f, rounds] of rows) console.log(`${name.padEnd(28)}${`${s.toFixed(3)} s`.padStart(14)}${`${f.toFixed(0)} ms`.padStart(12)}   ${rounds.join(', ') || '-'}`);
  console.log(`frozen ${(plain[2] / pre[2]).toFixed(1)}x less with --pre-copy; best of ${RUNS} runs after a warm-up each; the process restored from a --pre-copy --kill image found every word of its memory as it must be`);
}

async function main() {
  const dir = mkdtempSync(join(process.env.CR_BENCH_DIR ?? tmpdir(), 'cr-bench-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  try {
    const cases = [
      ['shm', shmBench],
      ['compress', compressBench],
      ['sparse', sparseBench],
      ['process', processBench],
      ['tree', treeBench],
      ['precopy', preCopyBench],
    ].filter(([name]) => CASES.includes(name));
    for (const [i, [, run]] of cases.entries()) {
      if (i > 0) console.log('');
      await run(dir);
    }
  } finally {
    cleanUp();
  }
}

await main();
