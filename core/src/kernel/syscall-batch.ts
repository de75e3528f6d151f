/**
 * Many syscalls in one round trip, for a task cr made itself (a seed being restored): a loop of
 * machine code in a page cr maps into the task makes every call of a table there, and then stops
 * the task with SIGSTOP sent to itself, which its tracer (cr) sees and swallows. One resume and one
 * stop, where a remote syscall each costs two of both (see Ptrace.remoteSyscall) — what CRIU's
 * restorer blob does. Never in a live program's task: there cr adds no code (see RemoteTask.seize).
 *
 * The loop (x86_64; r12 = the table, r13 = its number of entries), assembled with `as`:
 *
 *   loop: test r13, r13 ; jz done
 *         mov rax, [r12] ; mov rdi, [r12+8] ; mov rsi, [r12+16] ; mov rdx, [r12+24]
 *         mov r10, [r12+32] ; mov r8, [r12+40] ; mov r9, [r12+48]
 *         syscall
 *         mov [r12+56], rax ; add r12, 64 ; dec r13 ; jmp loop
 *   done: jmp done
 *
 * The table's last entry is tkill(tid, SIGSTOP): the stop comes on the way out of it, so `done`
 * is never reached (were it, the task would spin until cr's wait for the stop timed out).
 */
export const BATCH_CODE = Buffer.from(
  '4d85ed7432498b0424498b7c2408498b742410498b5424184d8b5424204d8b4424284d8b4c24300f0549894424384983c44049ffcdebc9ebfe',
  'hex',
);

/** Bytes per table entry: the syscall number, six arguments, and the result the loop writes back. */
export const BATCH_ENTRY_SIZE = 64;

/** One call of a batch; memory arguments are addresses in the task (RemoteTask.put). */
export interface BatchedCall {
  /** How errors name it: `rt_sigaction(10)`. */
  name: string;
  nr: number;
  args: readonly bigint[];
}

/** The table the loop runs through: each call, then tkill(tid, SIGSTOP). */
export function batchTable(calls: readonly BatchedCall[], tid: number, tkill: number, sigstop: number): Buffer {
  const all = [...calls.map((c) => [BigInt(c.nr), ...c.args]), [BigInt(tkill), BigInt(tid), BigInt(sigstop)]];
  const table = Buffer.alloc(all.length * BATCH_ENTRY_SIZE);
  all.forEach((words, i) => {
    if (words.length > 7) throw new Error(`internal error: a batched syscall takes at most 6 arguments`);
    words.forEach((w, j) => table.writeBigUInt64LE(BigInt.asUintN(64, w), i * BATCH_ENTRY_SIZE + j * 8));
  });
  return table;
}

/** The results the loop wrote back into `table` (read from the task), one per call, as signed values. */
export function batchResults(table: Buffer, count: number): bigint[] {
  return Array.from({ length: count }, (_, i) => table.readBigInt64LE(i * BATCH_ENTRY_SIZE + 56));
}
