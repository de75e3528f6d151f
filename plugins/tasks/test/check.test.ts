import { Kernel, REGISTER_NAMES } from '@cr/core';
import { TasksPlugin, tasksRecordSchema, type LiveTaskRecord, type TasksRecord } from '@cr/plugin-tasks';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new TasksPlugin(new Kernel());
const zero = '0x0';

/** A process record as save writes one, with the parts the tests change. */
function task(over: Partial<TasksRecord> = {}): TasksRecord {
  return tasksRecordSchema.parse({
    pid: 42,
    comm: 'sleeper',
    ppid: 1,
    sessionLeader: false,
    groupLeader: true,
    credentials: { uids: [0, 0, 0, 0], gids: [0, 0, 0, 0], groups: [], capabilities: { inheritable: zero, permitted: zero, effective: zero, bounding: zero, ambient: zero } },
    registers: Object.fromEntries(REGISTER_NAMES.map((name) => [name, zero])),
    xstate: Buffer.alloc(576).toString('base64'),
    signals: { blocked: zero, actions: [], pending: [], altStack: { sp: zero, flags: 2, size: zero } },
    rlimits: [{ resource: 'nofile', soft: '0x400', hard: '0x80000' }],
    scheduling: { nice: 0, policy: 0, rtPriority: 0, affinity: 'ff' },
    itimers: [],
    personality: 0,
    umask: 0o22,
    cwd: '/',
    prctl: { pdeathsig: 0, dumpable: 1, noNewPrivs: false, childSubreaper: false, timerSlackNs: 50000, thpDisable: false, keepCaps: false },
    ...over,
  });
}

describe('tasks checkRecord', () => {
  it('accepts a process record that agrees with its object', () => {
    expect(plugin.checkRecord(task(), recordCheckContext('tasks:42'))).toEqual([]);
  });

  it('names another PID, a soft limit above the hard one, a siginfo of the wrong size and a blob', () => {
    const wrong = task({
      rlimits: [{ resource: 'nofile', soft: '0x80001', hard: '0x80000' }],
      signals: { blocked: zero, actions: [], pending: [{ shared: false, siginfo: Buffer.alloc(100).toString('base64') }], altStack: { sp: zero, flags: 2, size: zero } },
    });
    expect(plugin.checkRecord(wrong, recordCheckContext('tasks:43', { blobSizes: { regs: 8 } }))).toEqual([
      'it holds PID 42, not 43',
      'its RLIMIT_NOFILE has a soft limit 0x80001 above its hard limit 0x80000',
      'its pending signal 0 has a siginfo of 100 bytes, not 128',
      'it has a "regs" blob, which its type never writes',
    ]);
  });
});

describe('tasks checkRecord of a threaded process', () => {
  const thread = (tid: number, pending: string[] = []): NonNullable<LiveTaskRecord['threads']>[number] => ({
    tid,
    comm: 'worker',
    registers: Object.fromEntries(REGISTER_NAMES.map((name) => [name, zero])) as LiveTaskRecord['registers'],
    xstate: Buffer.alloc(576).toString('base64'),
    blocked: zero,
    pending,
    altStack: { sp: zero, flags: 2, size: zero },
    clearChildTid: zero,
    robustList: { head: zero, length: '0x18' },
    scheduling: { nice: 0, policy: 0, rtPriority: 0, affinity: 'ff' },
  });

  it('accepts threads with ids of their own', () => {
    expect(plugin.checkRecord(task({ threads: [thread(43), thread(44)] }), recordCheckContext('tasks:42'))).toEqual([]);
  });

  it("names a thread id used twice or the PID's, and a thread's siginfo of the wrong size", () => {
    const wrong = task({ threads: [thread(43), thread(43), thread(42, [Buffer.alloc(64).toString('base64')])] });
    expect(plugin.checkRecord(wrong, recordCheckContext('tasks:42'))).toEqual([
      'its thread id 43 is used twice',
      "its thread id 42 is the PID, which is the main thread's",
      'the pending signal 0 of its thread 42 has a siginfo of 64 bytes, not 128',
    ]);
  });

  it('accepts a main thread that had exited with threads left, and names one with none left', () => {
    expect(plugin.checkRecord(task({ mainThreadExited: true, threads: [thread(43)] }), recordCheckContext('tasks:42'))).toEqual([]);
    expect(plugin.checkRecord(task({ mainThreadExited: true }), recordCheckContext('tasks:42'))).toEqual([
      'its main thread had exited, but it has no other thread: the process would end as soon as it ran',
    ]);
  });
});
