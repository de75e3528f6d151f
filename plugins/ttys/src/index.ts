import {
  Kernel,
  O_CLOEXEC,
  PLUGIN_API_VERSION,
  TargetError,
  blobProblems,
  holderProblems,
  inject,
  injectable,
  installDescription,
  type CollectedObject,
  type DescriptionHolder,
  type RecordCheckContext,
  type ResourceNode,
  type ResourcePlugin,
  type RestoreContext,
  type SaveContext,
} from '@cr/core';
import { TASKS, restoredTaskOf, type TaskHandle } from '@cr/plugin-tasks';
import { inheritedPath } from '@cr/descriptor-base';
import { O_NOCTTY } from 'node:constants';
import { closeSync, openSync } from 'node:fs';
import { ptyDescriptions, treePtys, type PtyDescriptor } from './collect.js';
import { ttysRecordSchema, type GivenTerminalRecord, type TtysRecord } from './record.js';
import { restorePty, setControllingTerminal, type RestoredPty } from './restore.js';
import { savePty } from './save.js';

export { ttysRecordSchema, type TtysRecord, type PtyRecord, type GivenTerminalRecord } from './record.js';

const O_ACCMODE = 3;

/** A pty pair whose master is in the checkpoint (every descriptor of the tree on it), or a process's descriptors on a slave whose master is outside. */
export type TtyHandle =
  | { kind: 'pty'; index: number; descriptors: PtyDescriptor[]; pids: number[] }
  | { kind: 'given'; pid: number; descriptors: PtyDescriptor[]; holders: readonly DescriptionHolder[] }
  | { kind: 'outside-ctty'; pid: number; ttyNr: number };

/**
 * Pseudo-terminals (Unix98: /dev/ptmx masters, /dev/pts/N slaves). A pair whose master a process
 * of the checkpoint holds is saved once, with its settings, the output its master had not read and the input its slave side had not,
 * and restored as a new pair with the same index; every descriptor on either end is given back,
 * and the session it controlled gets it again as its controlling terminal, with its foreground
 * group. A slave above stdio whose master is outside (the user's terminal) is given again with
 * --inherit-fd; stdio on such a terminal is the files plugin's (inherited).
 */
@injectable()
export class TtysPlugin implements ResourcePlugin<TtysRecord, TtyHandle, RestoredPty | undefined> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = 'ttys';
  readonly version = 1;
  readonly description = 'Pseudo-terminals: pairs whose master is held here (settings, window size, modes, unread output and input, controlling terminal and foreground group), and slaves of outside terminals given with --inherit-fd';
  readonly collectsFrom = [TASKS.type];
  readonly recordSchema = ttysRecordSchema;
  readonly selectableBy = { pid: 'uint', index: 'uint', fd: 'uint' } as const;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<TtyHandle>[] {
    const task = TASKS.handleOf(parent);
    const { pid } = task;
    if (task.zombie) return [];
    const { descriptors, masters } = treePtys(this.kernel, task.tree);
    const own = descriptors.filter((d) => d.pid === pid);
    const pairs = [...new Set(own.filter((d) => masters.has(d.end.index)).map((d) => d.end.index))].map((index): CollectedObject<TtyHandle> => {
      const all = descriptors.filter((d) => d.end.index === index);
      const master = all.find((d) => d.end.end === 'master')!;
      return {
        id: String(index),
        handle: { kind: 'pty', index, descriptors: all, pids: task.tree.tasks.map((t) => t.pid) },
        attributes: { index, pid: master.pid, fd: master.info.fd },
        claims: own.filter((d) => d.end.index === index).map((d) => `fd:${pid}:${d.info.fd}`),
      };
    });
    return [...pairs, ...this.givenSlaves(task, own.filter((d) => !masters.has(d.end.index))), ...this.outsideTerminal(pid, masters)];
  }

  /**
   * Slaves of outside terminals above stdio, one object per open file description, saved with the
   * first process of the tree found holding it (after fork, the others are its holders); a dup of
   * stdio stays with the files plugin, as stdio does.
   */
  private givenSlaves(task: TaskHandle, slaves: readonly PtyDescriptor[]): CollectedObject<TtyHandle>[] {
    const { pid } = task;
    const stdio = slaves.filter((d) => d.info.fd <= 2);
    const above = slaves.filter((d) => d.info.fd > 2 && !stdio.some((s) => this.kernel.sameOpenFile(pid, s.info.fd, pid, d.info.fd)));
    return ptyDescriptions(this.kernel, above).map((description) => {
      const fds = description.holders[0]!.fds;
      const descriptors = above.filter((d) => fds.some((n) => n.fd === d.info.fd));
      const { first } = description;
      const shared = task.tree.descriptions.holderOf(this.type, pid, first.info, fds, `${pid}:${first.info.fd}`);
      return {
        id: shared.id,
        handle: { kind: 'given', pid, descriptors, holders: shared.holders },
        attributes: { index: first.end.index, pid, fd: first.info.fd },
        claims: descriptors.map((d) => `fd:${pid}:${d.info.fd}`),
      };
    });
  }

  /** A session leader whose controlling terminal is not a pty of the checkpoint: an object that warns when saved. */
  private outsideTerminal(pid: number, masters: ReadonlySet<number>): CollectedObject<TtyHandle>[] {
    const { sid, ttyNr } = this.kernel.procfs.stat(pid);
    if (sid !== pid || ttyNr === 0) return [];
    const index = this.kernel.ttys.slaveIndex(BigInt(ttyNr));
    if (index !== undefined && masters.has(index)) return [];
    return [{ id: `${pid}:ctty`, handle: { kind: 'outside-ctty', pid, ttyNr }, attributes: { pid, ...(index === undefined ? {} : { index }) } }];
  }

  async save(node: ResourceNode<TtyHandle>, ctx: SaveContext): Promise<TtysRecord> {
    const { handle } = node;
    if (handle.kind === 'pty') return savePty(this.kernel, handle.index, handle.descriptors, handle.pids, ctx);
    if (handle.kind === 'outside-ctty') {
      const terminal = `${(handle.ttyNr >> 8) & 0xfff}:${(handle.ttyNr & 0xff) | ((handle.ttyNr >> 12) & 0xfff00)}`;
      ctx.warn(`PID ${handle.pid} leads a session whose controlling terminal (device ${terminal}) is outside the checkpoint; the restored session has no controlling terminal (job control and /dev/tty will not work in it)`);
      return { kind: 'outside-ctty', terminal };
    }
    const first = handle.descriptors[0]!;
    const fds = handle.descriptors.map((d) => d.info.fd);
    ctx.warn(`PID ${handle.pid}: fd ${fds.join(', ')} is ${first.info.link}, a terminal whose master is outside the checkpoint; restore will need --inherit-fd ${fds[0]}=PATH`);
    return {
      kind: 'given',
      index: first.end.index,
      path: first.info.link,
      flags: first.info.flags & ~O_CLOEXEC,
      fds: handle.descriptors.map((d) => ({ fd: d.info.fd, closeOnExec: (d.info.flags & O_CLOEXEC) !== 0 })),
      ...(handle.holders.length > 0 ? { holders: handle.holders.map((h) => ({ pid: h.pid, fds: [...h.fds] })) } : {}),
    };
  }

  checkRecord(record: TtysRecord, ctx: RecordCheckContext): string[] {
    if (record.kind === 'outside-ctty') {
      const [pid] = ctx.id.split(':');
      return TASKS.isAmong(ctx.parents, pid!) ? blobProblems(ctx, {}) : [`it is the terminal of PID ${pid} but does not hang below ${TASKS.key(pid!)}`];
    }
    if (record.kind === 'given') {
      const [pid, fd] = ctx.id.split(':');
      const problems = String(record.fds[0]!.fd) === fd ? [] : [`its first descriptor is ${record.fds[0]!.fd}, not ${fd}`];
      if (!TASKS.isAmong(ctx.parents, pid!)) problems.push(`it is a terminal of PID ${pid} but does not hang below ${TASKS.key(pid!)}`);
      return [...problems, ...holderProblems(record.holders ?? [], pid!, ctx.parents), ...blobProblems(ctx, {})];
    }
    const problems: string[] = [];
    if (String(record.index) !== ctx.id) problems.push(`it is pty ${record.index}, not ${ctx.id}`);
    if (record.descriptions.filter((d) => d.end === 'master').length !== 1) problems.push('it has not exactly one master description');
    for (const d of record.descriptions) {
      for (const h of d.holders) {
        if (!TASKS.isAmong(ctx.parents, h.pid)) problems.push(`PID ${h.pid} holds it but it does not hang below ${TASKS.key(h.pid)}`);
        if (new Set(h.fds.map((n) => n.fd)).size !== h.fds.length) problems.push(`PID ${h.pid} holds it on one descriptor twice`);
      }
    }
    return [...problems, ...blobProblems(ctx, { ...(record.output > 0 ? { output: record.output } : {}), ...(record.input ? { input: record.input } : {}) })];
  }

  inheritableFds(record: TtysRecord): number[] {
    return record.kind === 'given' ? record.fds.map((d) => d.fd) : [];
  }

  /** The pair's index must be free (a new pair cannot take a used one), and a given terminal needs --inherit-fd; checked before anything changes. */
  preflight(record: TtysRecord, ctx: RestoreContext): void {
    if (record.kind === 'outside-ctty') return;
    if (record.kind === 'pty') {
      if (this.kernel.ttys.inUse(record.index)) {
        throw new TargetError(`cannot restore ${ctx.key}: /dev/pts/${record.index} is in use by another terminal, and a restored pty gets its saved index back; close that terminal first`);
      }
      return;
    }
    if (inheritedPath(record.fds, ctx)) return;
    const fds = record.fds.map((d) => d.fd);
    const [pid] = ctx.key.slice(this.type.length + 1).split(':');
    throw new TargetError(
      `cannot restore fd ${fds.join(', ')} of PID ${pid}: it was ${record.path}, a terminal whose master was outside the checkpoint; give a terminal with --inherit-fd ${fds[0]}=PATH (for instance $(tty))`,
    );
  }

  async restore(record: TtysRecord, ctx: RestoreContext): Promise<RestoredPty | undefined> {
    if (record.kind === 'pty') return restorePty(this.kernel, record, ctx);
    if (record.kind === 'given') this.restoreGiven(record, ctx);
    return undefined;
  }

  /** The controlling terminal, once every process exists (resume runs before the processes' own, which lets them run). */
  resume(record: TtysRecord, restored: RestoredPty | undefined, ctx: RestoreContext): void {
    if (record.kind !== 'pty' || !restored) return;
    try {
      setControllingTerminal(this.kernel, record, restored, ctx);
    } finally {
      restored.close();
    }
  }

  rollback(_record: TtysRecord, restored: RestoredPty | undefined): void {
    restored?.close();
  }

  private restoreGiven(record: GivenTerminalRecord, ctx: RestoreContext): void {
    const { fd, path } = inheritedPath(record.fds, ctx)!;
    let local: number;
    try {
      local = openSync(path, (record.flags & O_ACCMODE) | O_NOCTTY);
    } catch (err) {
      throw new TargetError(`--inherit-fd ${fd}=${path}: cannot open it (${(err as NodeJS.ErrnoException).code})`);
    }
    try {
      installDescription(restoredTaskOf(ctx), local, record.fds, record.flags & ~O_ACCMODE);
      for (const { pid, fds } of record.holders ?? []) {
        const holder = TASKS.restored(ctx, pid)?.task;
        if (holder) installDescription(holder, local, fds, record.flags & ~O_ACCMODE);
      }
    } finally {
      closeSync(local);
    }
  }
}

export default TtysPlugin;
