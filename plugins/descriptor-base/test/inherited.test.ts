import { execFileSync } from 'node:child_process';
import { O_APPEND, O_NONBLOCK, O_RDONLY, O_RDWR, O_WRONLY } from 'node:constants';
import { closeSync, mkdtempSync, readFileSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { inheritedPath, openInherited } from '@cr/descriptor-base';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
const tempDir = () => {
  const d = mkdtempSync(join(tmpdir(), 'cr-inherited-'));
  dirs.push(d);
  return d;
};

describe('--inherit-fd', () => {
  it('finds the path given for any of the numbers of a description', () => {
    const ctx = { options: { inheritFds: { 7: '/tmp/x' } } };
    expect(inheritedPath([{ fd: 5 }, { fd: 7 }], ctx)).toEqual({ fd: 7, path: '/tmp/x' });
    expect(inheritedPath([{ fd: 5 }], ctx)).toBeUndefined();
  });

  it('appends to a file it creates if missing, with the program flags and O_APPEND, so nothing is written over', () => {
    const path = join(tempDir(), 'log');
    const { local, statusFlags } = openInherited(5, path, O_WRONLY | O_NONBLOCK);
    try {
      expect(statusFlags).toBe(O_NONBLOCK | O_APPEND);
      expect(statSync(path).mode & 0o777).toBe(0o644 & ~process.umask());
      writeSync(local, 'one');
      writeSync(local, 'two', 0);
      expect(readFileSync(path, 'utf8')).toBe('onetwo');
    } finally {
      closeSync(local);
    }
  });

  it('opens a read end read-only, and refuses a named pipe nobody reads from instead of waiting', () => {
    const fifo = join(tempDir(), 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(() => openInherited(5, fifo, O_WRONLY)).toThrow(`--inherit-fd 5=${fifo}: cannot open it (ENXIO: a pipe nobody reads from)`);
    const reader = openInherited(3, fifo, O_RDONLY);
    try {
      expect(reader.statusFlags).toBe(0);
      // A reader there now: the write end opens, without O_APPEND (not a regular file).
      const writer = openInherited(5, fifo, O_RDWR);
      closeSync(writer.local);
      expect(writer.statusFlags).toBe(0);
    } finally {
      closeSync(reader.local);
    }
  });
});
