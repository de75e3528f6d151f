import type { PosixTimer } from './record.js';

/** A timer as /proc/PID/timers shows it, before timer_gettime(2) tells how it is armed. */
export type ListedTimer = Pick<PosixTimer, 'id' | 'clockId' | 'notify' | 'signal' | 'value' | 'tid'>;

const NOTIFY: Readonly<Record<string, PosixTimer['notify']>> = { 'signal/pid': 'signal', 'signal/tid': 'thread', 'none/pid': 'none', 'none/tid': 'none' };

/**
 * The timers of /proc/PID/timers, blocks of "ID: 0", "signal: 35/0000000000001234",
 * "notify: signal/pid.1234" ("signal/tid.N" for SIGEV_THREAD_ID), "ClockID: 1", in id order.
 * A notification this does not know is returned as undefined, for the caller to refuse.
 */
export function listedTimers(text: string): (ListedTimer | { id: number; unknown: string })[] {
  const timers: (ListedTimer | { id: number; unknown: string })[] = [];
  for (const block of text.split(/^(?=ID:)/m).filter((b) => b.trim() !== '')) {
    const field = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(block)?.[1]?.trim() ?? '';
    const id = Number(field('ID'));
    const [signal, value] = field('signal').split('/');
    const notifyField = field('notify');
    const [how, whom] = notifyField.split('.');
    const notify = NOTIFY[how ?? ''];
    if (!notify) {
      timers.push({ id, unknown: notifyField });
      continue;
    }
    timers.push({ id, clockId: Number(field('ClockID')), notify, signal: Number(signal), value: String(BigInt(`0x${value || '0'}`)), tid: Number(whom ?? 0) });
  }
  return timers.sort((a, b) => a.id - b.id);
}
