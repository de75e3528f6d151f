import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pinnedNamespacePaths } from '@cr/core/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, cr, crJson, nsenter, startInNewNamespaces, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const FIXTURE = 'hostname saved-host; domainname saved-dom; echo 12345 > /proc/sys/kernel/msgmax; echo 3333 > /proc/sys/kernel/shmmni';

interface InspectJson {
  manifest: { objects: { key: string; type: string; policy: { decision: string } }[] };
  records: Record<string, { hostname?: string; domainname?: string; sysctls?: Record<string, string> }>;
}

describe('namespaces without processes (uts-ns, ipc-ns)', () => {
  it('checkpoints a process in new UTS+IPC namespaces and restores them, pinned, with the same names and limits', async () => {
    const child = await startInNewNamespaces(FIXTURE, cleanup);
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    const pins = cleanup.pins(join(dir, 'pins'));

    const saved = cr(['checkpoint', String(child.pid), '-D', img, '--only', 'uts-ns,ipc-ns']);
    expect(saved.stderr).toBe('');
    expect(saved.status).toBe(0);
    expect(statMode(img)).toBe(0o700);
    expect(statMode(join(img, 'manifest.json'))).toBe(0o600);

    const inspected = crJson<InspectJson>(['inspect', img]);
    const uts = Object.entries(inspected.records).find(([k]) => k.startsWith('uts-ns:'))![1];
    const ipc = Object.entries(inspected.records).find(([k]) => k.startsWith('ipc-ns:'))![1];
    expect(uts).toEqual({ hostname: 'saved-host', domainname: 'saved-dom' });
    expect(ipc.sysctls).toMatchObject({ msgmax: '12345', shmmni: '3333' });

    child.kill('SIGKILL');
    const restored = cr(['restore', '-D', img, '--pin-ns', pins]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(readdirSync(pins).sort()).toEqual(['ipc', 'uts']);

    expect(nsenter([`--uts=${pins}/uts`, 'hostname'])).toBe('saved-host');
    expect(nsenter([`--uts=${pins}/uts`, 'domainname'])).toBe('saved-dom');
    for (const [name, value] of Object.entries(ipc.sysctls!)) {
      expect(nsenter([`--ipc=${pins}/ipc`, 'cat', `/proc/sys/kernel/${name}`]).replace(/\s+/g, ' '), name).toBe(value);
    }
    // The restored namespaces are new ones, not the host's.
    expect(readFileSync('/proc/sys/kernel/hostname', 'utf8').trim()).not.toBe('saved-host');

    const unpinned = cr(['unpin', pins]);
    expect(unpinned.status, unpinned.stderr).toBe(0);
    expect(existsSync(pins)).toBe(false);
  });

  it('--only and --exclude select resource types, and the manifest records the rule that decided', async () => {
    const child = await startInNewNamespaces(FIXTURE, cleanup);
    const dir = cleanup.dir(tempDir());

    expect(cr(['checkpoint', String(child.pid), '-D', join(dir, 'only'), '--only', 'uts-ns']).status).toBe(0);
    const only = crJson<InspectJson>(['inspect', join(dir, 'only')]);
    expect(Object.keys(only.records).map((k) => k.split(':')[0])).toEqual(['uts-ns']);

    expect(cr(['checkpoint', String(child.pid), '-D', join(dir, 'excl'), '--only', 'uts-ns,ipc-ns', '--exclude', 'ipc-ns']).status).toBe(0);
    const excl = crJson<InspectJson>(['inspect', join(dir, 'excl')]);
    expect(Object.keys(excl.records).map((k) => k.split(':')[0])).toEqual(['uts-ns']);

    const plan = crJson<{ objects: { type: string; policy: { decision: string; rule: string; source: string } }[] }>([
      'checkpoint', String(child.pid), '--dry-run', '--exclude', 'ipc-ns',
    ]);
    const byType = Object.fromEntries(plan.objects.map((o) => [o.type, o.policy]));
    expect(byType['uts-ns']).toEqual({ decision: 'include', rule: 'default', source: 'default' });
    expect(byType['ipc-ns']).toEqual({ decision: 'exclude', rule: 'type ipc-ns', source: 'flag --exclude' });
  });

  it('refuses bad targets clearly and creates nothing', () => {
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    const missing = cr(['checkpoint', '999999', '-D', img]);
    expect(missing.status).toBe(5);
    expect(missing.stderr).toContain('no process with PID 999999');
    const kthread = cr(['checkpoint', '2', '-D', img]);
    expect(kthread.status).toBe(7);
    expect(kthread.stderr).toContain('PID 2 (kthreadd) is a kernel thread');
    const unknown = cr(['checkpoint', String(process.pid), '-D', img, '--only', 'no-such-type']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown resource type "no-such-type"');
    expect(readdirSync(dir)).toEqual([]);
  });

  it('will not write into a non-empty image directory, and leaves what is there alone', () => {
    const dir = cleanup.dir(tempDir());
    writeFileSync(join(dir, 'keep.txt'), 'precious');
    const r = cr(['checkpoint', String(process.pid), '-D', dir]);
    expect(r.status).toBe(4);
    expect(r.stderr).toContain(`${dir} is not empty`);
    expect(readdirSync(dir)).toEqual(['keep.txt']);
    expect(readFileSync(join(dir, 'keep.txt'), 'utf8')).toBe('precious');
  });

  it('restores nothing from a corrupt image, and never half-pins', async () => {
    const child = await startInNewNamespaces(FIXTURE, cleanup);
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    const pins = cleanup.pins(join(dir, 'pins'));
    expect(cr(['checkpoint', String(child.pid), '-D', img, '--only', 'uts-ns,ipc-ns']).status).toBe(0);
    child.kill('SIGKILL');

    const noPin = cr(['restore', '-D', img]);
    expect(noPin.status).toBe(5);
    expect(noPin.stderr).toContain('pass --pin-ns DIR');

    const manifest = JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')) as { files: Record<string, unknown> };
    const record = Object.keys(manifest.files).find((f) => f.startsWith('records/uts-ns/'))!;
    const bytes = readFileSync(join(img, record));
    bytes[bytes.indexOf('saved-host')] ^= 0x01;
    writeFileSync(join(img, record), bytes);

    const corrupt = cr(['restore', '-D', img, '--pin-ns', pins]);
    expect(corrupt.status).toBe(4);
    expect(corrupt.stderr).toContain(record);
    expect(corrupt.stderr).toContain('corrupt');
    expect(existsSync(pins)).toBe(false);
    expect(pinnedNamespacePaths(pins)).toEqual([]);
    expect(cr(['inspect', img]).status).toBe(4);
  });

  it('will not pin over an existing pin, and leaves the first one working', async () => {
    const child = await startInNewNamespaces(FIXTURE, cleanup);
    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    const pins = cleanup.pins(join(dir, 'pins'));
    expect(cr(['checkpoint', String(child.pid), '-D', img, '--only', 'uts-ns,ipc-ns']).status).toBe(0);
    expect(cr(['restore', '-D', img, '--pin-ns', pins]).status).toBe(0);
    const before = { files: readdirSync(pins).sort(), uts: statSync(join(pins, 'uts')).ino, ipc: statSync(join(pins, 'ipc')).ino, mounts: pinnedNamespacePaths(pins).sort() };
    const again = cr(['restore', '-D', img, '--pin-ns', pins]);
    expect(again.status).toBe(5);
    expect(again.stderr).toContain(`cannot pin on ${join(pins, 'ipc')}`);
    expect(again.stderr).toContain('cr unpin');
    // The same namespaces are still pinned, once each, and still work.
    expect({ files: readdirSync(pins).sort(), uts: statSync(join(pins, 'uts')).ino, ipc: statSync(join(pins, 'ipc')).ino, mounts: pinnedNamespacePaths(pins).sort() }).toEqual(before);
    expect(before.mounts).toEqual([join(pins, 'ipc'), join(pins, 'uts')]);
    expect(nsenter([`--uts=${pins}/uts`, 'hostname'])).toBe('saved-host');
  });
});

function statMode(path: string): number {
  return statSync(path).mode & 0o777;
}
