import { existsSync, mkdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, cr, crJson, tempDir } from './helpers/cli.js';
import { checkpointAndKill, compileFixture, lines, restoreDetached, startFixture, waitForLine } from './helpers/processes.js';

/** One process with files of every kind (test/fixtures/files.c), checkpointed while it runs on. */
const cleanup = new Cleanup();
let dir: string;
let img: string;
let child: ChildProcess;
let pid: number;
let data: string;
let out: string;

beforeAll(async () => {
  dir = cleanup.dir(tempDir());
  compileFixture('files', dir);
  data = join(dir, 'data');
  mkdirSync(data);
  writeFileSync(join(data, 'input.txt'), '0123456789abcdefghijklmnopqrstuvwxyz');
  writeFileSync(join(data, 'priv.bin'), 'p'.repeat(4096));
  writeFileSync(join(data, 'shared.bin'), 's'.repeat(4096));
  out = join(dir, 'out.txt');
  child = await startFixture(cleanup, join(dir, 'files'), [data], out);
  pid = child.pid!;
  img = join(dir, 'img');
  expect(cr(['checkpoint', String(pid), '-D', img]).status).toBe(0);
});
afterAll(() => cleanup.run());

describe('cr inspect ps, fds, mems, show', () => {
  it('ps: the process under no saved parent, with its parent, uid and name', () => {
    expect(crJson(['inspect', 'ps', img]).processes).toEqual([{ pid, ppid: process.pid, uid: 0, comm: 'files', children: [] }]);
    expect(cr(['inspect', 'ps', img]).stdout).toMatch(new RegExp(`^PID +PPID +UID +COMMAND\\n${pid} +${process.pid} +0 +files`));
  });

  it('fds: every descriptor as the kernel shows it, with cwd and exe', () => {
    type Row = { pid: number; fd: number | string; kind: string; target: string; offset?: string; decision: string };
    const rows = crJson<{ files: Row[] }>(['inspect', 'fds', img]).files;
    expect(rows.slice(0, 2)).toEqual([
      { pid, fd: 'cwd', kind: 'directory', target: readlinkSync(`/proc/${pid}/cwd`), access: '', decision: 'include' },
      { pid, fd: 'exe', kind: 'file', target: readlinkSync(`/proc/${pid}/exe`), access: '', decision: 'include' },
    ]);
    const fds = rows.slice(2);
    expect(fds.map((r) => r.fd)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8]);
    for (const row of fds) {
      const live = readlinkSync(`/proc/${pid}/fd/${row.fd}`);
      if (row.kind === 'duplicate') expect(readlinkSync(`/proc/${pid}/fd/${row.target.replace('fd ', '')}`)).toBe(live);
      else expect(live.replace(/ \(deleted\)$/, '')).toBe(row.target);
      if (row.offset !== undefined) expect(readFileSync(`/proc/${pid}/fdinfo/${row.fd}`, 'utf8')).toMatch(new RegExp(`^pos:\\s+${row.offset}$`, 'm'));
    }
    expect(fds.map((r) => r.kind)).toEqual(['device', 'file', 'duplicate', 'file', 'duplicate', 'file', 'deleted', 'directory', 'device']);
  });

  it('mems: the mappings of /proc/PID/maps, and as many saved pages as the pages blob holds', () => {
    type Mapping = { start: string; end: string; pages: number; savedPages: number; prot: string };
    const [mm] = crJson<{ processes: { pid: number; mappings: Mapping[] }[] }>(['inspect', 'mems', img]).processes;
    expect(mm!.pid).toBe(pid);
    // the vsyscall page is the kernel's, in every process, and not saved
    const maps = readFileSync(`/proc/${pid}/maps`, 'utf8').trim().split('\n').filter((l) => !l.endsWith('[vsyscall]')).map((l) => l.split(/\s+/));
    expect(mm!.mappings.map((m) => `${BigInt(m.start).toString(16)}-${BigInt(m.end).toString(16)} ${m.prot}`)).toEqual(maps.map(([range, prot]) => `${range} ${prot}`));
    for (const m of mm!.mappings) expect(m.savedPages).toBeLessThanOrEqual(m.pages);
    const manifest = crJson<{ manifest: { files: Record<string, { size: number }> } }>(['inspect', img, '--no-records']).manifest;
    const saved = mm!.mappings.reduce((n, m) => n + m.savedPages, 0);
    expect(saved * 4096).toBe(manifest.files[`blobs/mm/${pid}/pages.bin`]!.size);
    expect(saved).toBeGreaterThan(0);
  });

  it('show: one object and its record, as cr inspect reads it; an object the image lacks is a usage error naming it', () => {
    const all = crJson<{ records: Record<string, unknown> }>(['inspect', img]).records;
    const shown = crJson<{ object: { key: string; blobs?: Record<string, string> }; record: unknown }>(['inspect', 'show', img, `files:${pid}:6`]);
    expect(shown.object.key).toBe(`files:${pid}:6`);
    expect(shown.object.blobs).toEqual({ contents: expect.stringMatching(/contents\.bin$/) });
    expect(shown.record).toEqual(all[`files:${pid}:6`]);
    const bad = cr(['inspect', 'show', img, `files:${pid}:99`]);
    expect(bad.stderr).toMatch(new RegExp(`^cr: ${img} holds no object files:${pid}:99; its objects: tasks:${pid}, [^\\n]+\\n$`));
    expect(bad.status).toBe(2);
  });
});

describe('cr inspect decode, encode and diff', () => {
  it('an image decoded, edited and encoded again differs by the edit only, and an unedited one is restored', async () => {
    const doc = join(dir, 'img.json');
    expect(cr(['inspect', 'decode', img, '-o', doc]).status).toBe(0);
    const decoded = JSON.parse(readFileSync(doc, 'utf8'));
    expect(cr(['inspect', 'diff', img, img]).stdout).toContain('the images hold the same objects, records and blobs');

    decoded.records[`files:${pid}:3`].record.offset = '11';
    const edited = join(dir, 'edited.json');
    writeFileSync(edited, JSON.stringify(decoded));
    expect(cr(['inspect', 'encode', edited, '-D', join(dir, 'edited')]).status).toBe(0);
    expect(crJson(['inspect', 'diff', img, join(dir, 'edited')])).toEqual({
      same: false,
      differences: [{ in: 'record', object: `files:${pid}:3`, path: 'offset', change: 'changed', old: '10', new: '11' }],
      warnings: [],
    });
    // The arrow is written as an escape in the ASCII bundle (cli/scripts/bundle.js): it must come out as itself.
    expect(cr(['inspect', 'diff', img, join(dir, 'edited')]).stdout).toContain('offset: "10" → "11"');

    const copy = join(dir, 'copy');
    const encoded = cr(['inspect', 'encode', doc, '-D', copy]);
    expect(encoded.stdout).toMatch(/^encoded .* every digest recomputed\n$/);
    expect(crJson(['inspect', 'decode', copy])).toEqual({ ...JSON.parse(readFileSync(doc, 'utf8')), warnings: [] });
    await checkpointAndKill(child, join(dir, 'final'), []);
    await restoreDetached(cleanup, copy, pid);
    process.kill(pid, 'SIGUSR1');
    await waitForLine(out, /^shared=/);
    // the copy holds the first checkpoint: fd 3 was 10 bytes into input.txt
    expect(lines(out).slice(1)).toEqual(['input=abcdefghij', 'tmp=contents', 'dir=0123', 'null=1 cloexec=1', 'private=Xp', 'shared=YZ']);
  });

  it('encode refuses a document that does not make a valid image, and leaves nothing', () => {
    const decoded = JSON.parse(cr(['inspect', 'decode', img]).stdout);
    const cases: [string, (d: any) => void, string][] = [
      ['a record its plugin refuses', (d) => (d.records[`tasks:${pid}`].record.pid = -1), `record tasks:${pid}`],
      ['a pages blob shorter than the record says', (d) => (d.blobs[`mm:${pid}`].pages = Buffer.alloc(4096).toString('base64')), 'pages'],
      ['a record missing', (d) => delete d.records[`mm:${pid}`], `record for mm:${pid}`],
      ['not a document', (d) => delete d.format, '"format"'],
    ];
    for (const [what, edit, word] of cases) {
      const doc = structuredClone(decoded);
      edit(doc);
      const file = join(dir, 'bad.json');
      writeFileSync(file, JSON.stringify(doc));
      const target = join(dir, 'bad-img');
      const r = cr(['inspect', 'encode', file, '-D', target]);
      expect(r.stderr, what).toContain(word);
      expect(r.stderr, what).toMatch(/^cr: /);
      expect(r.status, what).toBe(4);
      expect(existsSync(target), what).toBe(false);
    }
  });
});
