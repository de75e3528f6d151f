/**
 * Many syscalls in one round trip, for a task cr made itself (a seed being restored): a loop of
 * machine code in a page cr maps into the task makes every call of a table there, and then stops
 * the task with SIGSTOP sent to itself, which its tracer (cr) sees and swallows. One resume and one
 * stop, where a remote syscall each costs two of both (see Ptrace.remoteSyscall) — what CRIU's
 * restorer blob does. Never in a live program's task: there cr adds no code (see RemoteTask.seize).
 *
 * An argument may be the result of an earlier call of the same table (bit 32 + n of an entry's
 * first word marks argument n as one; the argument is then that call's index), so that a call
 * can use the descriptor an earlier one opened: pidfd_open, pidfd_getfd on it, close it.
 *
 * The loop (x86_64; r12 = the table, r13 = its number of entries, r14 = the table again), assembled
 * with `as`:
 *
 *   loop: test r13, r13 ; jz done
 *         mov rax, [r12] ; mov rbx, rax ; shr rbx, 32 ; mov eax, eax
 *         mov rdi, [r12+8] ; bt ebx, 0 ; jnc 1f ; shl rdi, 6 ; mov rdi, [r14+rdi+56]
 *     1:  (the same for rsi, rdx, r10, r8 and r9 with bits 1 to 5)
 *         syscall
 *         mov [r12+56], rax ; add r12, 64 ; dec r13 ; jmp loop
 *   done: jmp done
 *
 * The table's last entry is tkill(tid, SIGSTOP): the stop comes on the way out of it, so `done`
 * is never reached (were it, the task would spin until cr's wait for the stop timed out).
 */
export const BATCH_CODE = Buffer.from(
  '4d85ed0f8498000000498b04244889c348c1eb2089c0498b7c24080fbae300730948c1e706498b7c3e38498b7424100fbae301730948c1e606498b743638' +
    '498b5424180fbae302730948c1e206498b5416384d8b5424200fbae303730949c1e2064f8b5416384d8b4424280fbae304730949c1e0064f8b4406384d8b' +
    '4c24300fbae305730949c1e1064f8b4c0e380f0549894424384983c44049ffcde95fffffffebfe',
  'hex',
);

/** Bytes per table entry: the syscall number, six arguments, and the result the loop writes back. */
export const BATCH_ENTRY_SIZE = 64;

/** An argument that is the result of call `resultOf` (its index) of the same batch. */
export interface ResultOf {
  resultOf: number;
}

/** One call of a batch; memory arguments are addresses in the task (RemoteTask.put). */
export interface BatchedCall {
  /** How errors name it: `rt_sigaction(10)`. */
  name: string;
  nr: number;
  args: readonly (bigint | ResultOf)[];
}

/** The table the loop runs through: each call, then tkill(tid, SIGSTOP). */
export function batchTable(calls: readonly BatchedCall[], tid: number, tkill: number, sigstop: number): Buffer {
  const all: BatchedCall[] = [...calls, { name: 'tkill', nr: tkill, args: [BigInt(tid), BigInt(sigstop)] }];
  const table = Buffer.alloc(all.length * BATCH_ENTRY_SIZE);
  all.forEach((call, i) => {
    if (call.args.length > 6) throw new Error(`internal error: a batched syscall takes at most 6 arguments`);
    let references = 0n;
    call.args.forEach((arg, j) => {
      let word: bigint;
      if (typeof arg === 'bigint') word = arg;
      else {
        if (arg.resultOf < 0 || arg.resultOf >= i) throw new Error(`internal error: ${call.name} uses the result of call ${arg.resultOf}, which does not come before it`);
        references |= 1n << BigInt(j);
        word = BigInt(arg.resultOf);
      }
      table.writeBigUInt64LE(BigInt.asUintN(64, word), i * BATCH_ENTRY_SIZE + (j + 1) * 8);
    });
    table.writeBigUInt64LE(BigInt(call.nr) | (references << 32n), i * BATCH_ENTRY_SIZE);
  });
  return table;
}

/** The results the loop wrote back into `table` (read from the task), one per call, as signed values. */
export function batchResults(table: Buffer, count: number): bigint[] {
  return Array.from({ length: count }, (_, i) => table.readBigInt64LE(i * BATCH_ENTRY_SIZE + 56));
}
