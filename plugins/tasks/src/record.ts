import { z } from 'zod';
import { REGISTER_NAMES, SOCK_FILTER_SIZE } from '@cr/core';
import { base64Schema, pidSchema, u64Schema, uidSchema } from '@cr/schemas';

/** The interval timers by the names the record gives them, in the order of their numbers: ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF. */
export const ITIMERS = ['real', 'virtual', 'prof'] as const;

export const signalActionSchema = z.lazy(() =>
  z.strictObject({
    signal: z.number().int().min(1).max(64),
    handler: u64Schema.describe('SIG_DFL (0), SIG_IGN (1) or the handler address'),
    flags: u64Schema.describe('SA_* flags'),
    restorer: u64Schema,
    mask: u64Schema.describe('signals blocked while the handler runs'),
  }),
);

export const RLIMIT_NAMES = [
  'cpu', 'fsize', 'data', 'stack', 'core', 'rss', 'nproc', 'nofile', 'memlock', 'as', 'locks', 'sigpending', 'msgqueue', 'nice', 'rtprio', 'rttime',
] as const;

const altStackSchema = z.lazy(() => z.strictObject({ sp: u64Schema, flags: z.number().int().min(-0x8000_0000).max(0x7fff_ffff), size: u64Schema }));
const rseqSchema = z.lazy(() => z.strictObject({ address: u64Schema, size: z.number().int().positive(), signature: z.number().int().nonnegative() }));
const schedulingSchema = z.lazy(() =>
  z.strictObject({
    nice: z.number().int().min(-20).max(19),
    policy: z.number().int().nonnegative().describe('SCHED_OTHER 0, SCHED_FIFO 1, SCHED_RR 2, SCHED_BATCH 3, SCHED_IDLE 5'),
    rtPriority: z.number().int().min(0).max(99),
    affinity: z.string().regex(/^[0-9a-f]{1,8}(,[0-9a-f]{1,8})*$/).describe('the CPU mask as /proc/PID/status Cpus_allowed shows it: 32-bit words in hex'),
  }),
);
const restartSleepSchema = z.lazy(() =>
  z
    .strictObject({
      clockId: z.number().int().nonnegative(),
      remainingNs: z.string().regex(/^[0-9]+$/),
      remainder: u64Schema.describe('where the program asked for the remaining time (its rem/rmtp pointer)'),
    })
    .describe('a relative nanosleep/clock_nanosleep that was interrupted: it sleeps the remaining time after restore'),
);
const clearChildTidSchema = z.lazy(() => u64Schema.describe('where the kernel clears the thread id and wakes a futex when the thread exits (set_tid_address; pthread_join waits on it)'));
const robustListSchema = z.lazy(() =>
  z
    .strictObject({ head: u64Schema, length: u64Schema })
    .describe('the robust futex list (set_robust_list): its head and the size of the head'),
);

const credentialsSchema = z.lazy(() =>
  z.strictObject({
    uids: z.tuple([uidSchema, uidSchema, uidSchema, uidSchema]).describe('real, effective, saved, filesystem'),
    gids: z.tuple([uidSchema, uidSchema, uidSchema, uidSchema]),
    groups: z.array(uidSchema),
    capabilities: z.strictObject({ inheritable: u64Schema, permitted: u64Schema, effective: u64Schema, bounding: u64Schema, ambient: u64Schema }),
  }),
);
export type Credentials = z.infer<typeof credentialsSchema>;

/** The most instructions the kernel takes in one filter. */
const BPF_MAXINSNS = 4096;
const isBpfProgram = (bytes: number) => bytes > 0 && bytes % SOCK_FILTER_SIZE === 0 && bytes <= BPF_MAXINSNS * SOCK_FILTER_SIZE;

/** A thread's seccomp state, absent when it has none (mode 0). */
const seccompSchema = z.lazy(() =>
  z
    .discriminatedUnion('mode', [
      z.strictObject({ mode: z.literal('strict') }),
      z.strictObject({
        mode: z.literal('filter'),
        filters: z
          .array(
            z.strictObject({
              program: base64Schema
                .refine((b64) => isBpfProgram(Buffer.from(b64, 'base64').length), `a classic BPF program: 1 to ${BPF_MAXINSNS} instructions of ${SOCK_FILTER_SIZE} bytes`)
                .describe('the filter as installed: its struct sock_filter instructions'),
              log: z.boolean().describe('installed with SECCOMP_FILTER_FLAG_LOG'),
            }),
          )
          .min(1)
          .describe('oldest first, the order they are installed in again'),
      }),
    ])
    .describe('seccomp: strict mode, or the filters over the thread (seccomp(2)); restored last before the credentials, and applying once the thread runs'),
);

/** A thread other than the main one: what each thread has of its own. */
export const threadRecordSchema = z.lazy(() =>
  z.strictObject({
    tid: pidSchema,
    comm: z.string().max(15).describe('the thread name (pthread_setname_np, /proc/PID/task/TID/comm)'),
    registers: z.record(z.enum(REGISTER_NAMES), u64Schema),
    xstate: base64Schema,
    blocked: u64Schema,
    pending: z.array(base64Schema).describe("the signals queued for this thread alone, with their siginfo, in queue order"),
    altStack: altStackSchema,
    rseq: rseqSchema.optional(),
    clearChildTid: clearChildTidSchema,
    robustList: robustListSchema,
    scheduling: schedulingSchema,
    timerSlackNs: z.number().int().nonnegative().optional().describe("the thread's own timer slack (prctl PR_SET_TIMERSLACK); absent in images of cr before it, where the thread gets the main thread's"),
    restartSleep: restartSleepSchema.optional(),
    seccomp: seccompSchema.optional(),
    credentials: credentialsSchema
      .optional()
      .describe("the thread's own credentials, when they are not the process's (a program that changed one thread's ids with a raw syscall, around libc); absent, the thread gets the process's"),
  }),
);
export type ThreadRecord = z.infer<typeof threadRecordSchema>;

/** Where a process is in the tree, live or zombie; a function, so that its schemas are built with the record schema's. */
const treeLinks = () => ({
  pid: pidSchema,
  comm: z.string().max(15).describe('the command name (prctl PR_SET_NAME)'),
  ppid: z.number().int().nonnegative().describe('the parent: when its tasks record is in the image, the process is restored as its child'),
  pgid: z.number().int().nonnegative().optional().describe('the process group; images before tree support (version 1) left it out'),
  sid: z.number().int().nonnegative().optional().describe('the session; images before tree support (version 1) left it out'),
  enterVia: z
    .strictObject({ pid: pidSchema, session: z.boolean() })
    .optional()
    .describe('the leader of its session (session: true) or process group had exited: restore makes a helper with the leader\'s PID that calls setsid or setpgid, makes this process, and exits'),
});

/** A process that had exited and was not reaped yet: restored as a zombie its parent reaps. */
export const zombieRecordSchema = z.lazy(() =>
  z.strictObject({
    ...treeLinks(),
    exited: z.strictObject({
      waitStatus: z.number().int().min(0).max(0xffff).describe('what wait() reports: the exit code << 8, or the signal that killed it'),
    }),
  }),
);
export type ZombieRecord = z.infer<typeof zombieRecordSchema>;

export const liveTaskRecordSchema = z.lazy(() =>
  z.strictObject({
    ...treeLinks(),
    sessionLeader: z.boolean().describe('sid == pid: restored with setsid()'),
    groupLeader: z.boolean().describe('pgid == pid: restored with setpgid(0, 0)'),
    credentials: credentialsSchema,
    registers: z.record(z.enum(REGISTER_NAMES), u64Schema),
    xstate: base64Schema.describe('the XSAVE area (FPU, SSE, AVX …) as PTRACE_GETREGSET NT_X86_XSTATE returns it'),
    signals: z.strictObject({
      blocked: u64Schema,
      actions: z.array(signalActionSchema).describe('every signal whose disposition is not the default'),
      pending: z.array(z.strictObject({ shared: z.boolean(), siginfo: base64Schema })).describe('queued signals with their siginfo, in queue order'),
      altStack: altStackSchema,
    }),
    rlimits: z.array(z.strictObject({ resource: z.enum(RLIMIT_NAMES), soft: u64Schema, hard: u64Schema })),
    scheduling: schedulingSchema,
    itimers: z
      .array(z.strictObject({ which: z.enum(ITIMERS), intervalUs: z.string().regex(/^[0-9]+$/), valueUs: z.string().regex(/^[0-9]+$/) }))
      .describe('the armed interval timers (setitimer, alarm): the time left runs again from the restore'),
    personality: z.number().int().nonnegative(),
    umask: z.number().int().min(0).max(0o777),
    cwd: z.string().startsWith('/').describe("the working directory, as cr sees it (a chrooted process's is under its root)"),
    root: z.string().startsWith('/').optional().describe("the root directory of a chrooted process, as cr sees it; absent when it is cr's"),
    rseq: rseqSchema.optional(),
    prctl: z.strictObject({
      pdeathsig: z.number().int().min(0).max(64),
      dumpable: z.number().int().min(0).max(2),
      noNewPrivs: z.boolean(),
      childSubreaper: z.boolean(),
      timerSlackNs: z.number().int().nonnegative(),
      thpDisable: z.boolean(),
      keepCaps: z.boolean(),
    }),
    restartSleep: restartSleepSchema.optional(),
    seccomp: seccompSchema.optional().describe('of the main thread'),
    stopped: z
      .number()
      .int()
      .min(1)
      .max(64)
      .optional()
      .describe('job control had stopped it (state T), with this signal (SIGSTOP, SIGTSTP …): restored stopped, by SIGSTOP'),
    clearChildTid: clearChildTidSchema.optional().describe('of the main thread; absent in images of cr before threads'),
    robustList: robustListSchema.optional().describe('of the main thread; absent in images of cr before threads'),
    threads: z.array(threadRecordSchema).optional().describe('the threads other than the main one, whose state is the rest of this record'),
    sharesWithParent: z
      .array(z.enum(['files', 'fs']))
      .optional()
      .describe('what it shares with its parent, as a process made by clone() with CLONE_FILES (its fd table) or CLONE_FS (working directory, root, umask): restored with those flags'),
    mainThreadExited: z
      .literal(true)
      .optional()
      .describe(
        'the main thread had exited (pthread_exit) while the threads listed ran on: restore sets the process up through a main thread that exits (exit(2), the process living on) when the threads run; the per-thread fields of this record (registers, mask, rseq …) are then those of the first listed thread, and are not restored on the main thread',
      ),
  }),
);
export type LiveTaskRecord = z.infer<typeof liveTaskRecordSchema>;

export const tasksRecordSchema = z.lazy(() => z.union([liveTaskRecordSchema, zombieRecordSchema]));
export type TasksRecord = z.infer<typeof tasksRecordSchema>;

export function isZombieRecord(record: TasksRecord): record is ZombieRecord {
  return 'exited' in record;
}
