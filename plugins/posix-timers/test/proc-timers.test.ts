import { describe, expect, it } from 'vitest';
import { listedTimers } from '../src/proc-timers.js';

describe('listedTimers', () => {
  it('reads /proc/PID/timers: id, signal and value, notification, clock; in id order', () => {
    const text = `ID: 2
signal: 0/0000000000000000
notify: none/pid.10908
ClockID: 7
ID: 1
signal: 14/0000000000000000
notify: signal/tid.10908
ClockID: 0
ID: 0
signal: 35/0000000000001234
notify: signal/pid.10908
ClockID: 1
`;
    expect(listedTimers(text)).toEqual([
      { id: 0, clockId: 1, notify: 'signal', signal: 35, value: '4660', tid: 10908 },
      { id: 1, clockId: 0, notify: 'thread', signal: 14, value: '0', tid: 10908 },
      { id: 2, clockId: 7, notify: 'none', signal: 0, value: '0', tid: 10908 },
    ]);
  });

  it('gives a notification it does not know back as such, for the plugin to refuse', () => {
    expect(listedTimers('ID: 4\nsignal: 10/0\nnotify: strange/pid.1\nClockID: 1\n')).toEqual([{ id: 4, unknown: 'strange/pid.1' }]);
    expect(listedTimers('')).toEqual([]);
  });
});
