import { RemoteTask } from './remote-task.js';
import type { TaskRead } from './task-reads.js';

/**
 * Reads of many stopped tasks gathered to be made at once (RemoteTask.readAcross): `add` each,
 * `run` them all, then call what `add` gave back for its answer, typed.
 */
export class TaskReads {
  private readonly requests: { task: RemoteTask; read: TaskRead<unknown> }[] = [];
  private readonly load = new Map<RemoteTask, number>();
  private answers: unknown[] | undefined;

  /** Asks for `read` of `task`; the function returned gives the answer once `run` has. */
  add<T>(task: RemoteTask, read: TaskRead<T>): () => T {
    if (this.answers) throw new Error('internal error: a read added after the reads ran');
    const index = this.requests.push({ task, read }) - 1;
    this.load.set(task, (this.load.get(task) ?? 0) + 1);
    return () => {
      if (!this.answers) throw new Error(`internal error: the answer of ${read.name} asked for before the reads ran`);
      return this.answers[index] as T;
    };
  }

  /**
   * Asks for `read` of what `tasks` share, so that any of them answers the same (the threads of
   * one process, for its signal dispositions or interval timers): the one with the fewest reads
   * so far makes it, so that a process's reads are spread over its threads, which run them side
   * by side.
   */
  addShared<T>(tasks: readonly RemoteTask[], read: TaskRead<T>): () => T {
    const least = tasks.reduce<RemoteTask | undefined>((best, t) => (best && (this.load.get(best) ?? 0) <= (this.load.get(t) ?? 0) ? best : t), undefined);
    if (!least) throw new Error(`internal error: ${read.name} asked of no task`);
    return this.add(least, read);
  }

  /** Makes every read added, in all their tasks at once; throws as RemoteTask.readAcross does. */
  run(): void {
    this.answers = RemoteTask.readAcross(this.requests);
  }
}
