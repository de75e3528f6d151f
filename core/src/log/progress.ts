import type { InjectionToken } from 'tsyringe';

/** A piece of work whose progress can be shown: saving one blob, restoring every object … */
export interface ProgressWork {
  /** The phase it belongs to ("save", "recreate"). */
  readonly phase: string;
  /** What is being done, e.g. "mm:42 pages". */
  readonly label: string;
  readonly unit: 'bytes' | 'objects';
  /** How many units in all, when known; an estimate may be passed, the work may end short of it. */
  readonly total?: number;
}

/** One started piece of work: `advance` as units are done, `end` once, however it ended. */
export interface ProgressTask {
  advance(units: number): void;
  end(): void;
}

/**
 * Where the engines report the progress of long work (the CLI draws a bar on a terminal). Tasks
 * may nest: a blob's bytes within the phase's objects.
 */
export interface ProgressReporter {
  start(work: ProgressWork): ProgressTask;
}

const idle: ProgressTask = { advance: () => {}, end: () => {} };

/** Shows nothing: what the engines use when nobody gave them a reporter. */
export const noProgress: ProgressReporter = { start: () => idle };

/** The container token of the ProgressReporter the engines report to (noProgress unless one is registered). */
export const PROGRESS: InjectionToken<ProgressReporter> = Symbol('cr.ProgressReporter');
