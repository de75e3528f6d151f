import { KernelError, type Logger } from '@cr/core';
import { describe, expect, it } from 'vitest';
import { PhaseClock } from '../src/log/phases.js';

/** A logger that keeps every call: [level, fields, message]. */
function recordingLogger(lines: [string, Record<string, unknown>, string][] = [], bindings: Record<string, unknown> = {}): Logger & { lines: typeof lines } {
  const at =
    (level: string) =>
    (fields: object | string, message?: string) =>
      typeof fields === 'string' ? lines.push([level, { ...bindings }, fields]) : lines.push([level, { ...bindings, ...fields }, message ?? '']);
  return { lines, error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), trace: at('trace'), child: (more) => recordingLogger(lines, { ...bindings, ...more }) };
}

describe('PhaseClock', () => {
  it('times whole phases and phases done in pieces, and logs each end at info and each object at debug', async () => {
    const log = recordingLogger();
    const clock = new PhaseClock(log);
    expect(await clock.time('check', () => 3, (n) => `${n} record(s)`)).toBe(3);
    for (const key of ['a:1', 'a:2']) await clock.piece('collect', key, async () => [key], (found) => `${found.length} object(s)`);
    clock.report('collect', '2 object(s)');
    expect(Object.keys(clock.timings)).toEqual(['check', 'collect']);
    for (const ms of Object.values(clock.timings)) expect(ms).toBeGreaterThanOrEqual(0);
    expect(log.lines.map(([level, fields, message]) => [level, fields.phase, fields.object, message.replace(/[\d.]+ ms$/, 'N ms')])).toEqual([
      ['info', 'check', undefined, 'phase check: 3 record(s) in N ms'],
      ['debug', 'collect', 'a:1', 'collect a:1: 1 object(s) in N ms'],
      ['debug', 'collect', 'a:2', 'collect a:2: 1 object(s) in N ms'],
      ['info', 'collect', undefined, 'phase collect: 2 object(s) in N ms'],
    ]);
  });

  it('logs a failure once, where it happened: the phase, the object and the error with its syscall, errno and target', async () => {
    const log = recordingLogger();
    const clock = new PhaseClock(log);
    const failure = new KernelError('ptrace', 3, 'PID 42');
    const run = clock.time('save', () => clock.step('save', 'mm:42', () => Promise.reject(failure)));
    await expect(run).rejects.toBe(failure);
    const errors = log.lines.filter(([level]) => level === 'error');
    expect(errors).toEqual([['error', { phase: 'save', object: 'mm:42', err: failure }, `phase save failed at mm:42: ${failure.message}`]]);
    expect(failure).toMatchObject({ syscall: 'ptrace', code: 'ESRCH', target: 'PID 42' });
    // The time spent until the failure still counts.
    expect(clock.timings.save).toBeGreaterThanOrEqual(0);
  });
});
