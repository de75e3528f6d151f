import type { LiveTaskRecord } from './record.js';

/** What is wrong with the threads of a record: a thread id used twice (or the PID's), a siginfo of the wrong size, no thread left when the main one had exited. */
export function threadProblems(record: LiveTaskRecord, siginfoSize: number): string[] {
  const problems: string[] = [];
  if (record.mainThreadExited && (record.threads ?? []).length === 0) problems.push('its main thread had exited, but it has no other thread: the process would end as soon as it ran');
  const seen = new Set([record.pid]);
  for (const thread of record.threads ?? []) {
    if (thread.tid === record.pid) problems.push(`its thread id ${thread.tid} is the PID, which is the main thread's`);
    else if (seen.has(thread.tid)) problems.push(`its thread id ${thread.tid} is used twice`);
    seen.add(thread.tid);
    thread.pending.forEach((siginfo, i) => {
      const size = Buffer.from(siginfo, 'base64').length;
      if (size !== siginfoSize) problems.push(`the pending signal ${i} of its thread ${thread.tid} has a siginfo of ${size} bytes, not ${siginfoSize}`);
    });
  }
  return problems;
}
