import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Kernel } from '@cr/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, cr, crJson, nsenter, startUntilReady, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const kernel = new Kernel();
/** An ftok-style key at or above 2^31: /proc/sysvipc shows it as -865664020. */
const HIGH_KEY = 0xcc6703ec;

/** Every object these tests make lives in a namespace of its own: none may show in the host's. */
const hostKeys = () => ['shm', 'msg'].flatMap((kind) => kernel.sysvipc.list(kind as 'shm').map((o) => o.key));
let keysBefore: number[];
beforeAll(() => {
  keysBefore = hostKeys();
});
afterAll(() => {
  expect(hostKeys().filter((k) => [HIGH_KEY, 0x1111, 0x2222].includes(k) && !keysBefore.includes(k))).toEqual([]);
});

/**
 * A process alone in a new IPC namespace holding two segments (one with HIGH_KEY, its bytes a
 * pattern) and a queue. Every object dies with the namespace when cleanup kills the process.
 */
async function scratchNamespace(): Promise<number> {
  const holder = await startUntilReady('unshare', ['--ipc', 'sh', '-c', 'echo ready; exec sleep 1000'], cleanup);
  const ns = kernel.namespaces.fromPath(`/proc/${holder.pid}/ns/ipc`, 'ipc');
  try {
    kernel.namespaces.within(ns, () => {
      const id = kernel.sysvipc.shmCreate(HIGH_KEY, 8192, 0o600);
      const mapping = kernel.sysvipc.shmAttach(id, 8192, false);
      mapping.view().forEach((_, i, view) => (view[i] = i % 251));
      mapping.detach();
      kernel.sysvipc.shmCreate(0x1111, 4096, 0o600);
      kernel.sysvipc.msgCreate(0x2222, 0o600);
    });
  } finally {
    ns.close();
  }
  return holder.pid!;
}

interface Inspected {
  manifest: { objects: { key: string; attributes: { key?: string }; policy: { decision: string; rule: string } }[] };
  records: Record<string, { key?: number }>;
}

describe('selectors typed by the plugins, against the real kernel', () => {
  it('--include sysvipc-shm:key=0xcc6703ec with sysvipc-shm excluded saves exactly that segment, and restores it with its key', async () => {
    const pid = await scratchNamespace();
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');

    const plan = crJson<{ objects: { type: string; attributes: { key?: string } }[] }>(['checkpoint', '--ipc-ns', String(pid), '--dry-run']);
    expect(plan.objects.filter((o) => o.type === 'sysvipc-shm').map((o) => o.attributes.key).sort()).toEqual(['0x00001111', '0xcc6703ec']);

    const saved = cr(['checkpoint', '--ipc-ns', String(pid), '-D', img, '--exclude', 'sysvipc-shm', '--include', 'sysvipc-shm:key=0xcc6703ec']);
    expect(saved.stderr).toBe('');
    expect(saved.status).toBe(0);
    const { manifest, records } = crJson<Inspected>(['inspect', img]);
    const shm = Object.entries(records).filter(([k]) => k.startsWith('sysvipc-shm:'));
    expect(shm.map(([, r]) => r.key)).toEqual([HIGH_KEY]);
    const decisions = manifest.objects.filter((o) => o.key.startsWith('sysvipc-shm:')).map((o) => [o.attributes.key, o.policy.decision, o.policy.rule]);
    expect(decisions.sort()).toEqual([
      ['0x00001111', 'exclude', 'type sysvipc-shm'],
      ['0xcc6703ec', 'include', 'object sysvipc-shm key=0xcc6703ec'],
    ]);
    expect(cr(['inspect', img, '--no-records']).stdout).toMatch(/^sysvipc-shm:\d+ +include +object sysvipc-shm key=0xcc6703ec +flag --include/m);

    const pins = cleanup.pins(join(dir, 'pins'));
    const restored = cr(['restore', '-D', img, '--pin-ns', pins]);
    expect(restored.status, restored.stderr).toBe(0);
    const segments = nsenter([`--ipc=${pins}/ipc`, 'cat', '/proc/sysvipc/shm']).split('\n').slice(1).map((l) => l.trim().split(/\s+/));
    expect(segments.map((f) => [Number(f[0]) >>> 0, Number(f[3])])).toEqual([[HIGH_KEY, 8192]]);
    const ns = kernel.namespaces.fromPath(join(pins, 'ipc'), 'ipc');
    try {
      const contents = kernel.namespaces.within(ns, () => {
        const [segment] = kernel.sysvipc.list('shm');
        const mapping = kernel.sysvipc.shmAttach(segment!.id, segment!.size, true);
        try {
          return Buffer.from(mapping.view());
        } finally {
          mapping.detach();
        }
      });
      expect(contents.every((b, i) => b === i % 251)).toBe(true);
    } finally {
      ns.close();
    }
    expect(cr(['unpin', pins]).status).toBe(0);
  });

  it('a selector that matches no collected object is a warning, and with --strict an error before anything is saved', async () => {
    const pid = await scratchNamespace();
    const dir = cleanup.dir(tempDir());
    const args = ['checkpoint', '--ipc-ns', String(pid), '--exclude', 'sysvipc-shm:key=0xdeadbeef'];
    const warning = 'cr: warning: sysvipc-shm:key=0xdeadbeef (flag --exclude) matches no collected object, so it has no effect\n';

    const planned = cr([...args, '--dry-run']);
    expect(planned.status).toBe(0);
    expect(planned.stderr).toBe(warning);
    const json = cr([...args, '--dry-run', '--json']);
    expect((JSON.parse(json.stdout) as { warnings: string[] }).warnings).toEqual([warning.slice('cr: warning: '.length, -1)]);

    const saved = cr([...args, '-D', join(dir, 'img')]);
    expect(saved.status).toBe(0);
    expect(saved.stderr).toBe(warning);
    expect(saved.stdout).toMatch(/^saved 4 object\(s\)/m);

    for (const strict of [[...args, '--dry-run', '--strict'], [...args, '-D', join(dir, 'strict'), '--strict']]) {
      const refused = cr(strict);
      expect(refused.status).toBe(2);
      expect(refused.stdout).toBe('');
      expect(refused.stderr).toMatch(/^cr: --strict: sysvipc-shm:key=0xdeadbeef \(flag --exclude\) matches no collected object[^\n]*\n$/);
    }
    expect(existsSync(join(dir, 'strict'))).toBe(false);
  });

  it('--strict refuses a selector that matches nothing in a process, which carries on untouched', async () => {
    const sleeper = cleanup.process(spawn('sleep', ['1000'], { stdio: 'ignore' }));
    const dir = cleanup.dir(tempDir());
    const refused = cr(['checkpoint', String(sleeper.pid), '-D', join(dir, 'img'), '--strict', '--exclude', 'files:fd=99']);
    expect(refused.status).toBe(2);
    expect(refused.stderr).toMatch(/^cr: --strict: files:fd=99 \(flag --exclude\) matches no collected object/);
    expect(existsSync(join(dir, 'img'))).toBe(false);
    const status = readFileSync(`/proc/${sleeper.pid}/status`, 'utf8');
    expect(status).toMatch(/^State:\s+S/m);
    expect(status).toMatch(/^TracerPid:\s+0$/m);
    expect(status).toMatch(/^SigBlk:\s+0+$/m);
  });
});
