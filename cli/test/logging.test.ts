import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KernelError } from '@cr/core';
import { silentLogger } from '@cr/core/engine';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../src/logging/create-logger.js';
import { humanLines } from '../src/logging/human-lines.js';

let dir: string | undefined;
afterEach(() => dir && rmSync(dir, { recursive: true, force: true }));

describe('createLogger', () => {
  it('is silent, without loading pino, when neither -v nor a log file is given', async () => {
    expect(await createLogger({ verbosity: 0, stderr: () => {} })).toBe(silentLogger);
  });

  it('writes every level to the log file as JSON, and to stderr only from the level -v, -vv, -vvv ask for, up to info', async () => {
    dir = mkdtempSync(join(tmpdir(), 'cr-logger-'));
    const file = join(dir, 'cr.log');
    for (const verbosity of [1, 2, 3]) {
      const shown: string[] = [];
      const log = await createLogger({ verbosity, file, stderr: (text) => shown.push(text) });
      log.trace('t');
      log.debug('d');
      log.info('i');
      log.warn('w');
      log.error({ err: new KernelError('setns', 1, '/proc/42/ns/ipc') }, 'e');
      expect(shown).toEqual(['cr: trace: t\n', 'cr: debug: d\n', 'cr: info: i\n'].slice(3 - verbosity));
    }
    const lines = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
    expect(lines.map((l) => l.level)).toEqual(Array(3).fill(['trace', 'debug', 'info', 'warn', 'error']).flat());
    expect(lines.at(-1)!.err).toMatchObject({ type: 'KernelError', syscall: 'setns', errno: 1, code: 'EPERM', target: '/proc/42/ns/ipc' });
    expect(typeof lines[0]!.time).toBe('string');
  });
});

describe('humanLines', () => {
  const line = (fields: Record<string, unknown>) => JSON.stringify({ time: '2026-12-03T09:00:01.250Z', ...fields });

  it('off a terminal: cr: LEVEL: message, a plugin line naming its object; warnings and errors left to cr', () => {
    const shown: string[] = [];
    const out = humanLines((t) => shown.push(t), undefined);
    out.write(line({ level: 'info', msg: 'phase save: in 3.0 ms' }));
    out.write(line({ level: 'debug', plugin: 'mm', object: 'mm:42', msg: '3 mapping(s)' }));
    out.write(line({ level: 'warn', msg: 'w' }));
    out.write(line({ level: 'error', msg: 'e' }));
    expect(shown).toEqual(['cr: info: phase save: in 3.0 ms\n', 'cr: debug: mm:42: 3 mapping(s)\n']);
  });

  it('on a terminal: the time of day with milliseconds and the level, coloured only if the terminal has colours', () => {
    const shown: string[] = [];
    humanLines((t) => shown.push(t), { colour: false }).write(line({ level: 'debug', msg: 'm' }));
    humanLines((t) => shown.push(t), { colour: true }).write(line({ level: 'debug', msg: 'm' }));
    expect(shown[0]).toMatch(/^\d\d:\d\d:\d\d\.250 debug m\n$/);
    expect(shown[1]).toMatch(/^\d\d:\d\d:\d\d\.250 \u001b\[\d+mdebug\u001b\[\d+m m\n$/);
  });
});
