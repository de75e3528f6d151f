import type { Logger } from './logger.js';

/** How long each phase of a checkpoint or restore took, in milliseconds, in the order they ran. */
export type PhaseTimings = Record<string, number>;

/**
 * Times the phases of one checkpoint or restore and logs them: the end of each phase at info
 * level (`phase save: 5 object(s) in 412.3 ms`), each object's step at debug level
 * (`save mm:42: 1 blob, 412.0 MiB in 410.1 ms`), and a failure once, at error level, with the
 * phase, the object and the error (a kernel error's syscall, errno and target among its fields).
 */
export class PhaseClock {
  readonly timings: PhaseTimings = {};
  private readonly reported = new WeakSet<object>();

  constructor(readonly log: Logger) {}

  /** Runs `work` as the whole of phase `name` and logs its end, with `summary` of what it did. */
  async time<T>(name: string, work: () => T | Promise<T>, summary?: (result: T) => string): Promise<T> {
    const result = await this.piece(name, undefined, work);
    this.report(name, summary?.(result));
    return result;
  }

  /**
   * Runs `work` as a piece of phase `name` (collect and freeze alternate, type by type), adding its
   * time to the phase's; with an `object`, logs it as that object's step (see `step`).
   */
  async piece<T>(name: string, object: string | undefined, work: () => T | Promise<T>, detail?: (result: T) => string): Promise<T> {
    const start = performance.now();
    try {
      return await this.step(name, object, work, detail);
    } finally {
      this.timings[name] = round((this.timings[name] ?? 0) + performance.now() - start);
    }
  }

  /** Runs `work` as the step of phase `name` for `object` and logs it at debug level, with `detail` of what it did. */
  async step<T>(name: string, object: string | undefined, work: () => T | Promise<T>, detail?: (result: T) => string): Promise<T> {
    const start = performance.now();
    let result: T;
    try {
      result = await work();
    } catch (err) {
      this.failed(name, object, err);
      throw err;
    }
    if (object !== undefined) {
      const ms = round(performance.now() - start);
      const what = detail?.(result);
      this.log.debug({ phase: name, object, ms }, `${name} ${object}${what ? `: ${what}` : ''} in ${ms.toFixed(1)} ms`);
    }
    return result;
  }

  /** Logs the end of phase `name`, which took what its pieces added up to. */
  report(name: string, summary?: string): void {
    const ms = (this.timings[name] ??= 0);
    this.log.info({ phase: name, ms }, `phase ${name}: ${summary ? `${summary} ` : ''}in ${ms.toFixed(1)} ms`);
  }

  private failed(phase: string, object: string | undefined, err: unknown): void {
    const key = typeof err === 'object' && err !== null ? err : undefined;
    if (key && this.reported.has(key)) return;
    if (key) this.reported.add(key);
    const message = err instanceof Error ? err.message : String(err);
    this.log.error({ phase, ...(object === undefined ? {} : { object }), err }, `phase ${phase} failed${object === undefined ? '' : ` at ${object}`}: ${message}`);
  }
}

/** Milliseconds to the microsecond: finer is noise, and JSON output stays short. */
const round = (ms: number) => Math.round(ms * 1000) / 1000;

/** 412.0 MiB, 3.5 KiB, 12 B: sizes in log lines. */
export function describeBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}
