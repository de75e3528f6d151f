import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, cr, nsenter, startUntilReady, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const MIB = 1 << 20;
const SIZE = 64 * MIB;
const PAGE = 4096;

/**
 * A perl program in an IPC namespace of its own, with a 64 MiB segment of which it wrote three
 * places (two pages at 32 MiB) and read one more page at 16 MiB, which the kernel then gives a
 * page of zeros.
 */
const SEGMENT_USER = `use IPC::SysV qw(IPC_CREAT);
defined(my $id = shmget(0x5151, ${SIZE}, IPC_CREAT | 0600)) or die "shmget: $!";
shmwrite($id, "hello at 0", 0, 10) or die;
shmwrite($id, "x" x 8192, ${32 * MIB}, 8192) or die;
shmwrite($id, "end", ${SIZE - 3}, 3) or die;
shmread($id, my $read, ${16 * MIB}, ${PAGE}) or die;
$| = 1;
print "ready\\n";
sleep 1000;`;

/** What the segment of key 0x5151 holds at each place the program wrote or read, and the memory it takes. */
const READER = `use IPC::SysV;
defined(my $id = shmget(0x5151, 0, 0)) or die "shmget: $!";
for ([0, 10], [${32 * MIB}, 8192], [${SIZE - 3}, 3], [${16 * MIB}, ${PAGE}], [${48 * MIB}, ${PAGE}]) {
  shmread($id, my $buf, $_->[0], $_->[1]) or die;
  my %seen = map { $_ => 1 } split //, $buf;
  print "$_->[0]: ", (keys %seen == 1 ? "all " . sprintf("%vd", (keys %seen)[0]) : $buf), "\\n";
}`;

/** The rss of the segment of key 0x5151 in the IPC namespace `ns` (a path), from /proc/sysvipc/shm. */
function segmentRss(ns: string): number {
  const table = nsenter([`--ipc=${ns}`, 'cat', '/proc/sysvipc/shm']).split('\n');
  const header = table[0]!.trim().split(/\s+/);
  const row = table.find((line) => line.trim().split(/\s+/)[0] === String(0x5151))!.trim().split(/\s+/);
  return Number(row[header.indexOf('rss')]);
}

function contents(ns: string): string {
  const r = spawnSync('nsenter', [`--ipc=${ns}`, 'perl', '-e', READER], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`perl: ${r.stderr}`);
  return r.stdout;
}

describe('sparse SysV shared memory', () => {
  it('a 64 MiB segment with four pages of data: only they are saved, checkpointing adds no memory to it, and the restored segment takes no more', async () => {
    const child = await startUntilReady('unshare', ['--ipc', 'perl', '-e', SEGMENT_USER], cleanup);
    const ns = `/proc/${child.pid}/ns/ipc`;
    const expected = contents(ns);
    expect(expected).toBe(`0: hello at 0\n${32 * MIB}: all 120\n${SIZE - 3}: end\n${16 * MIB}: all 0\n${48 * MIB}: all 0\n`);
    // Reading a hole gives the segment a page: the program read one, the reader above one more.
    const before = segmentRss(ns);
    expect(before).toBe(6 * PAGE);

    const dir = cleanup.dir(tempDir());
    const img = join(dir, 'img');
    const saved = cr(['checkpoint', '--ipc-ns', String(child.pid), '-D', img]);
    expect(saved.status, saved.stderr).toBe(0);
    expect(segmentRss(ns)).toBe(before);

    const manifest = JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')) as { objects: { type: string; blobs?: Record<string, string> }[]; files: Record<string, { size: number }> };
    const segment = manifest.objects.find((o) => o.type === 'sysvipc-shm')!;
    expect(manifest.files[segment.blobs!.contents!]!.size).toBe(4 * PAGE);

    child.kill('SIGKILL');
    const pins = cleanup.pins(join(dir, 'pins'));
    const restored = cr(['restore', '-D', img, '--pin-ns', pins]);
    expect(restored.status, restored.stderr).toBe(0);
    expect(segmentRss(join(pins, 'ipc'))).toBe(4 * PAGE);
    expect(contents(join(pins, 'ipc'))).toBe(expected);
  });
});
