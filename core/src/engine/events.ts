/** How much a log line matters; `debug` is detail for a log file, `warn` is something to act on. */
export type LogLevel = 'debug' | 'info' | 'warn';

/** One step of a phase of work: `done` of `total` objects saved or restored, the last being `key`. */
export interface Progress {
  phase: 'save' | 'restore';
  done: number;
  total: number;
  key: string;
}

/**
 * What the engines report as they work, to whoever drives them (the CLI's logger and progress
 * bar, a library user's callbacks). Both are optional. A callback that throws fails the
 * checkpoint or restore like any other error, which undoes it.
 */
export interface EngineEvents {
  log?(level: LogLevel, message: string, fields?: Readonly<Record<string, unknown>>): void;
  progress?(progress: Progress): void;
}
