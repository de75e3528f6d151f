import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CrError,
  ExitCode,
  Kernel,
  type NamespaceHandle,
} from '@cr/core';
import {
  PluginRegistry,
  RestoreEngine,
  createCrContainer,
  loadPlugins,
  pinnedNamespacePaths,
  type CheckedImage,
} from '@cr/core/engine';
import type { LiveTaskRecord } from '@cr/plugin-tasks';
import { BUILTIN_PLUGINS } from '@cr/api';
import { Cleanup, REPO, cr, startUntilReady } from './helpers/cli.js';
import { loadImage, mutantArbitrary, writeMutant, type Mutation, type PristineImage } from './helpers/image-mutants.js';
import { checkpointAndKill, compileFixture, crAsync, startFixture } from './helpers/processes.js';
import { emptyNamespace, ipcSysctlsOf, sysvStateOf, sysvStateOfImage } from './helpers/sysv-state.js';

/**
 * Fuzzes what cr accepts as an image. Mutants of a real SysV image and of a real process image
 * (seeded, so every run tries the same ones) are damaged below the digests or forged behind
 * them (digests recomputed, so that only the semantic checks can catch them). Each must be
 * refused with one line naming the problem, or restored exactly as it says. The SysV mutants
 * that pass validation are restored for real into a scratch IPC namespace (or a new, pinned one)
 * and compared with their records; the process ones are validated in-process, and a sample is
 * restored with the real CLI.
 */
const SEED = 20261125;
const RUNS = 1000;
/** Process mutants that pass validation are restored with the real CLI: the first few that changed each of these. */
const SAMPLED_PARTS = ['records/tasks/', 'records/files/', 'records/mm/', 'blobs/mm/'];
const PER_PART = 2;
/** Exit codes a restore that passed validation may still fail with: a kernel call, the image (a blob's digest), the target, the kernel. */
const RESTORE_FAILURES: number[] = [ExitCode.Failure, ExitCode.Image, ExitCode.Target, ExitCode.Unsupported];

const cleanup = new Cleanup();
afterAll(() => cleanup.run());

let work: string;
let sysv: PristineImage;
let proc: PristineImage;
let engine: RestoreEngine;
let kernel: Kernel;
let scratch: NamespaceHandle;
let scratchPath: string;

beforeAll(async () => {
  // Thousands of small image directories come and go: on tmpfs that costs no disk I/O.
  work = cleanup.dir(mkdtempSync('/dev/shm/cr-fuzz-'));
  const sysvipc = compileFixture('sysvipc', work);
  const objects = await startUntilReady('unshare', ['--ipc', sysvipc, 'create-small'], cleanup);
  const saved = cr(['checkpoint', '--ipc-ns', String(objects.pid), '-D', join(work, 'sysv-img')]);
  expect(saved.status, saved.stderr).toBe(0);
  objects.kill('SIGKILL');
  sysv = loadImage(join(work, 'sysv-img'));

  const sleeper = compileFixture('sleeper', work);
  // Without address randomisation, every run fuzzes (nearly) the same image with the same mutants.
  const child = await startFixture(cleanup, 'setarch', ['-R', sleeper, 'pause'], join(work, 'sleeper.out'));
  await checkpointAndKill(child, join(work, 'proc-img'));
  proc = loadImage(join(work, 'proc-img'));

  const container = createCrContainer();
  await loadPlugins(BUILTIN_PLUGINS, [join(REPO, 'cli')], container, container.resolve(PluginRegistry));
  engine = container.resolve(RestoreEngine);
  kernel = container.resolve(Kernel);
  // As roomy as the fixture's own namespace: cr may lack CAP_SYS_RESOURCE to exceed kernel.msgmnb.
  const holder = await startUntilReady('unshare', ['--ipc', 'sh', '-c', 'echo 16777216 > /proc/sys/kernel/msgmnb; echo ready; exec sleep 1000'], cleanup);
  scratchPath = `/proc/${holder.pid}/ns/ipc`;
  scratch = kernel.namespaces.fromPath(scratchPath, 'ipc');
  cleanup.add(() => scratch.close());
});

let serial = 0;
/** Writes the mutant into a directory of its own, removed again (with what sits beside it) once `use` is done. */
async function withMutant<T>(image: PristineImage, mutations: readonly Mutation[], use: (dir: string) => Promise<T> | T): Promise<T> {
  const name = `mutant-${serial++}`;
  try {
    writeMutant(image, mutations, join(work, name));
    return await use(join(work, name));
  } finally {
    for (const entry of readdirSync(work)) if (entry === name || entry.startsWith(`${name}.`)) rmSync(join(work, entry), { recursive: true, force: true });
  }
}

/** Validation in-process: the checked image, or the CrError that refused it (anything else fails the test). */
function check(dir: string): CheckedImage | CrError {
  try {
    return engine.check(dir);
  } catch (err) {
    expect(err, String((err as Error).stack)).toBeInstanceOf(CrError);
    const { exitCode, message } = err as CrError;
    expect([ExitCode.Image, ExitCode.Plugin], message).toContain(exitCode);
    expect(message).not.toContain('\n');
    return err as CrError;
  }
}

/** A failed restore must be cr's own one-line error with a documented exit code. */
function expectCleanFailure(err: unknown): void {
  expect(err, String((err as Error).stack)).toBeInstanceOf(CrError);
  expect(RESTORE_FAILURES, (err as Error).message).toContain((err as CrError).exitCode);
  expect((err as Error).message).not.toContain('\n');
}

/**
 * Runs `cr restore` without --detach, so that the restored process is cr's child and cr reaps
 * it. Resolves once it runs (with `end`, which kills it and waits for cr), or with cr's status
 * and stderr when the restore fails.
 */
function restoreAttached(dir: string): Promise<{ pid: number; end: () => Promise<void> } | { status: number; stderr: string }> {
  const child = spawn(process.execPath, [join(REPO, 'cli/bin/run.js'), 'restore', '-D', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = once(child, 'close');
  let stderr = '';
  return new Promise((ok, fail) => {
    child.once('error', fail);
    child.stderr!.on('data', (d: Buffer) => {
      stderr += d.toString();
      const running = /running as PID (\d+)/.exec(stderr);
      if (running) {
        const pid = Number(running[1]);
        const end = async () => {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // It ended by itself.
          }
          await exited;
        };
        ok({ pid, end });
      }
    });
    void exited.then(([code]) => ok({ status: code as number, stderr }));
  });
}


/** The name of the one file of `image` under `prefix` (a record of a type, whose name holds an id). */
const fileOf = (image: PristineImage, prefix: string) => [...image.files.keys()].find((f) => f.startsWith(prefix))!;
const set = (file: string, path: (string | number)[], value: unknown): Mutation => ({ layer: 'json', file, path, op: { set: value } });

describe('forged images (digests recomputed) that once restored something wrong, or failed with a raw error', () => {
  /** What validation says of the forged image: its one-line error and exit code. */
  const refusal = (image: PristineImage, mutations: Mutation[]) =>
    withMutant(image, mutations, (dir) => {
      const checked = check(dir);
      if (!(checked instanceof CrError)) throw new Error(`the forged image was accepted: ${JSON.stringify(mutations)}`);
      return `${checked.exitCode} ${checked.message.replaceAll(dir, 'IMG')}`;
    });

  it('SysV: message sizes that do not match the blob, a key of 2^32, a key used twice, an owner of -1', async () => {
    const msg = fileOf(sysv, 'records/sysvipc-msg/');
    const [shm1, shm2] = [...sysv.files.keys()].filter((f) => f.startsWith('records/sysvipc-shm/'));
    const sizes = (JSON.parse(sysv.files.get(msg)!.toString()) as { record: { messages: { size: number }[] } }).record.messages.map((m) => m.size);
    expect(await refusal(sysv, [set(msg, ['record', 'messages', 2, 'size'], sizes[2]! + 1)])).toMatch(
      new RegExp(`^4 record sysvipc-msg:\\d+ in IMG/${msg} does not agree with the image: its "messages" blob holds \\d+ bytes where the record implies \\d+$`),
    );
    expect(await refusal(sysv, [set(shm1!, ['record', 'key'], 2 ** 32)])).toMatch(/^4 record sysvipc-shm:\d+ in IMG\/\S+ fails its schema: at "key": found 4294967296; Too big/);
    const key = (JSON.parse(sysv.files.get(shm2!)!.toString()) as { record: { key: number } }).record.key;
    expect(await refusal(sysv, [set(shm1!, ['record', 'key'], key)])).toMatch(/does not agree with the image: sysvipc-shm:\d+ has the same key 0x[0-9a-f]{8} in the same IPC namespace /);
    expect(await refusal(sysv, [set(shm1!, ['record', 'uid'], -1)])).toMatch(/fails its schema: at "uid": found -1; Too small/);
  });

  it('process: uids of -1, overlapping or duplicate mappings, saved pages that are not in the blob, a dup of a higher fd', async () => {
    const tasks = fileOf(proc, 'records/tasks/');
    const mm = fileOf(proc, 'records/mm/');
    const vmas = (JSON.parse(proc.files.get(mm)!.toString()) as { record: { vmas: { start: string; end: string }[] } }).record.vmas;
    expect(await refusal(proc, [set(tasks, ['record', 'credentials', 'uids', 0], -1)])).toMatch(/^4 record tasks:\d+ in IMG\/\S+ fails its schema: at "credentials.uids\[0\]": found -1; Too small/);
    expect(await refusal(proc, [{ layer: 'json', file: mm, path: ['record', 'vmas', 1], op: { duplicate: true } }])).toMatch(
      /^4 record mm:\d+ in IMG\/\S+ does not agree with the image: mapping \S+ overlaps or comes before mapping \S+$/,
    );
    expect(await refusal(proc, [set(mm, ['record', 'vmas', 0, 'end'], vmas[1]!.end)])).toMatch(/overlaps or comes before mapping/);
    expect(await refusal(proc, [set(mm, ['record', 'pages', 0, 'pages'], 100000)])).toMatch(/do not lie page-aligned in one private mapping; .*its "pages" blob holds \d+ bytes where the record implies \d+$/);
    const files = fileOf(proc, 'records/files/');
    expect(await refusal(proc, [set(files, ['record'], { kind: 'duplicate', fd: 0, closeOnExec: false, of: 2 })])).toMatch(/it duplicates fd 2, which is not a lower fd$/);
  });

  it('any image: no object, file names leading out of it, a record version other than its manifest says, a missing blob', async () => {
    expect(await refusal(sysv, [set('manifest.json', ['objects'], []), set('manifest.json', ['files'], {})])).toBe(
      '4 IMG holds nothing to restore: it lists no object (cr inspect IMG shows the decisions)',
    );
    const shm = fileOf(sysv, 'records/sysvipc-shm/');
    const objects = (JSON.parse(sysv.files.get('manifest.json')!.toString()) as { objects: { record?: string }[] }).objects;
    const index = objects.findIndex((o) => o.record === shm);
    expect(await refusal(sysv, [set('manifest.json', ['objects', index, 'record'], `../../${shm}`)])).toMatch(
      /^4 IMG\/manifest.json is inconsistent: object sysvipc-shm:\d+: its record is at "..\/..\/records\/\S+" instead of records\/\S+$/,
    );
    const files = (JSON.parse(sysv.files.get('manifest.json')!.toString()) as { files: Record<string, unknown> }).files;
    expect(await refusal(sysv, [set('manifest.json', ['files'], { ...files, '../x': files[shm] })])).toBe(
      '4 IMG/manifest.json is inconsistent: it lists the file "../x", which is not a file name inside the image',
    );
    expect(await refusal(sysv, [set(shm, ['version'], 2)])).toMatch(/^4 record sysvipc-shm:\d+ in IMG\/\S+ has record version 2, but the manifest says sysvipc-shm records are version 1$/);
    const plugins = (JSON.parse(sysv.files.get('manifest.json')!.toString()) as { plugins: { type: string }[] }).plugins;
    expect(await refusal(sysv, [set('manifest.json', ['plugins', plugins.findIndex((p) => p.type === 'sysvipc-shm'), 'version'], 2)])).toMatch(
      /^6 the image holds sysvipc-shm records of version 2; the installed @cr\/plugin-sysvipc-shm reads version 1 and older: upgrade it$/,
    );
    const blob = fileOf(sysv, 'blobs/sysvipc-shm/');
    expect(await refusal(sysv, [{ layer: 'raw', file: blob, op: 'delete', at: 0 }])).toBe(`4 IMG/${blob} is missing from the image`);
  });
});

describe('fuzzed images', () => {
  it(`SysV image: ${RUNS} mutants are refused in one line, or restored exactly as they say, leaving nothing behind`, async () => {
    const counts = { refused: 0, failedAndRolledBack: 0, restored: 0 };
    const hostObjects = () => ['shm', 'msg', 'sem'].map((k) => readFileSync(`/proc/sysvipc/${k}`, 'utf8')).join('');
    const hostBefore = hostObjects();
    const arbitrary = fc.tuple(mutantArbitrary(sysv), fc.boolean());
    await fc.assert(
      fc.asyncProperty(arbitrary, ([mutations, intoScratch]) =>
        withMutant(sysv, mutations, async (dir) => {
          const checked = check(dir);
          if (checked instanceof CrError) return void counts.refused++;
          let expected;
          try {
            expected = sysvStateOfImage(checked);
          } catch (err) {
            expected = err as Error;
          }
          const pinDir = `${dir}.pins`;
          const options = intoScratch ? { into: { ipc: scratchPath } } : { pinDir };
          let restored;
          try {
            ({ restored } = await engine.restore({ imageDir: dir, options }));
          } catch (err) {
            expectCleanFailure(err);
            // Nothing half-restored: no object in the namespace it went into, no pin.
            if (intoScratch) expect(sysvStateOf(kernel, scratch)).toEqual({ shm: [], msg: [], sem: [] });
            else expect(existsSync(pinDir)).toBe(false);
            return void counts.failedAndRolledBack++;
          }
          if (intoScratch) {
            try {
              expect(expected).not.toBeInstanceOf(Error);
              expect(sysvStateOf(kernel, scratch)).toEqual(expected);
            } finally {
              emptyNamespace(kernel, scratch);
            }
          } else {
            const pinned = restored.find((r) => r.pinnedAt)!.pinnedAt!;
            const ns = kernel.namespaces.fromPath(pinned, 'ipc');
            try {
              expect(expected).not.toBeInstanceOf(Error);
              expect(sysvStateOf(kernel, ns)).toEqual(expected);
              const ipcNs = checked.records.find((r) => r.entry.type === 'ipc-ns')!.record as { sysctls: Record<string, string> };
              expect(ipcSysctlsOf(kernel, ns, Object.keys(ipcNs.sysctls))).toEqual(ipcNs.sysctls);
            } finally {
              ns.close();
              for (const path of pinnedNamespacePaths(pinDir)) kernel.namespaces.unpin(path);
              rmSync(pinDir, { recursive: true, force: true });
            }
          }
          counts.restored++;
        }),
      ),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`SysV image, ${RUNS} mutants: ${counts.refused} refused up front, ${counts.failedAndRolledBack} failed while restoring and were rolled back, ${counts.restored} restored exactly as they say`);
    expect(counts.refused + counts.failedAndRolledBack + counts.restored).toBe(RUNS);
    expect(counts.refused).toBeGreaterThan(RUNS / 4);
    expect(counts.restored).toBeGreaterThan(RUNS / 20);
    expect(hostObjects()).toBe(hostBefore);
  });

  it(`process image: ${RUNS} mutants are refused in one line or pass every check; a sample of those that pass restores as it says`, async () => {
    const counts = { refused: 0, accepted: 0 };
    const accepted: Mutation[][] = [];
    await fc.assert(
      fc.asyncProperty(mutantArbitrary(proc), (mutations) =>
        withMutant(proc, mutations, (dir) => {
          if (check(dir) instanceof CrError) return void counts.refused++;
          counts.accepted++;
          accepted.push(mutations);
        }),
      ),
      { seed: SEED, numRuns: RUNS },
    );
    console.log(`process image, ${RUNS} mutants: ${counts.refused} refused up front, ${counts.accepted} passed every check`);
    expect(counts.refused).toBeGreaterThan(RUNS / 4);

    const outcomes = { restored: 0, refused: 0 };
    // The first that changed each part of a process: its state, its descriptors, its mappings, its memory.
    const sample = SAMPLED_PARTS.flatMap((part) => accepted.filter((mutations) => mutations.some((m) => m.file.startsWith(part))).slice(0, PER_PART));
    expect(sample).toHaveLength(SAMPLED_PARTS.length * PER_PART);
    for (const mutations of sample) {
      await withMutant(proc, mutations, async (dir) => {
        const tasks = engine.check(dir).records.find((r) => r.entry.type === 'tasks')!.record as LiveTaskRecord;
        const restore = await restoreAttached(dir);
        if ('status' in restore) {
          expect(RESTORE_FAILURES, restore.stderr).toContain(restore.status);
          expect(restore.stderr).toMatch(/^cr: [^\n]+\n$/);
          // Nothing half-restored.
          expect(existsSync(`/proc/${tasks.pid}`)).toBe(false);
          return void outcomes.refused++;
        }
        try {
          expect(restore.pid).toBe(tasks.pid);
          outcomes.restored++;
          const status = readFileSync(`/proc/${tasks.pid}/status`, 'utf8');
          expect(status).toContain(`Uid:\t${tasks.credentials.uids.join('\t')}\n`);
          expect(status).toContain(`Gid:\t${tasks.credentials.gids.join('\t')}\n`);
        } catch (err) {
          // It ran, and ended at once (a mutated register or page can make it crash): as its image said.
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        } finally {
          await restore.end();
        }
      });
    }
    console.log(`process image, ${sample.length} of those restored with cr restore: ${outcomes.restored} restored, ${outcomes.refused} refused cleanly`);
    expect(outcomes.restored + outcomes.refused).toBe(sample.length);
  });

  it('the cr command refuses sampled mutants with one line "cr: …" and exit 4, naming the same problem as the engine', async () => {
    const refusals: Promise<void>[] = [];
    for (const image of [sysv, proc]) {
      const refused = fc
        .sample(mutantArbitrary(image), { seed: SEED + 1, numRuns: 50 })
        .map((mutations) => ({ mutations, dir: join(work, `cli-${serial++}`) }))
        .filter(({ mutations, dir }) => {
          writeMutant(image, mutations, dir);
          const checked = check(dir);
          return checked instanceof CrError && checked.exitCode === ExitCode.Image;
        })
        .slice(0, 2);
      expect(refused).toHaveLength(2);
      for (const { dir } of refused) {
        const message = (check(dir) as CrError).message;
        refusals.push(
          crAsync(['restore', '-D', dir, '--detach']).then((r) => {
            expect(r.stderr).toBe(`cr: ${message}\n`);
            expect(r.status).toBe(ExitCode.Image);
            expect(r.stdout).toBe('');
          }),
        );
      }
    }
    await Promise.all(refusals);
  });

  it('cr inspect reports a record that does not agree with the image, and exits 4', async () => {
    const msg = fileOf(sysv, 'records/sysvipc-msg/');
    await withMutant(sysv, [set(msg, ['record', 'messages', 0, 'size'], 1)], async (dir) => {
      const r = await crAsync(['inspect', dir, '--no-records']);
      expect(r.stdout).toMatch(new RegExp(`\\nintegrity: 1 problem\\(s\\)\\n {2}record sysvipc-msg:\\d+ in ${dir}/${msg} does not agree with the image: its "messages" blob holds`));
      expect(r.stderr).toBe(`cr: image ${dir} failed verification\n`);
      expect(r.status).toBe(ExitCode.Image);
    });
  });
});
