import { closeSync, constants, openSync } from 'node:fs';
import { getSystemErrorMap } from 'node:util';
import { CrError, ExitCode } from '@cr/core';
import { silentLogger, type Logger } from '@cr/core/engine';
import type { Level } from 'pino';
import { humanLines } from './human-lines.js';

export interface LogSettings {
  /** How many times -v was given: 1 shows info (phases and timings), 2 debug (each object's steps), 3 trace. */
  verbosity: number;
  /** `--log-file`: every line, trace level included, as JSON, appended. */
  file?: string;
  /** Writes a line to stderr (above any progress bar). */
  stderr: (text: string) => void;
  /** Set when stderr is a terminal: lines for people there, coloured unless `colour` is false. */
  terminal?: { colour: boolean };
}

const STDERR_LEVELS: readonly Level[] = ['info', 'debug', 'trace'];
/** The log file each logger writes to, which closeLogFile closes. */
const logFiles = new WeakMap<Logger, number>();

/**
 * cr's logger for one command: pino, writing JSON lines to the log file and lines for people to
 * stderr, each at its own level. With neither -v nor a log file nothing is logged, and pino is not
 * even loaded. The log file is opened first, so that a path cr cannot write is refused before
 * anything happens.
 */
export async function createLogger(settings: LogSettings): Promise<Logger> {
  const stderrLevel = settings.verbosity > 0 ? STDERR_LEVELS[Math.min(settings.verbosity, STDERR_LEVELS.length) - 1] : undefined;
  if (settings.file === undefined && stderrLevel === undefined) return silentLogger;
  const fd = settings.file === undefined ? undefined : openLogFile(settings.file);
  const { pino } = await import('pino');
  const streams: { level: Level; stream: { write(line: string): void } }[] = [];
  if (fd !== undefined) streams.push({ level: 'trace', stream: pino.destination({ fd, sync: true }) });
  if (stderrLevel !== undefined) streams.push({ level: stderrLevel, stream: humanLines(settings.stderr, settings.terminal) });
  const logger: Logger = pino(
    {
      level: fd !== undefined ? 'trace' : stderrLevel!,
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.errWithCause },
    },
    pino.multistream(streams),
  );
  if (fd !== undefined) logFiles.set(logger, fd);
  return logger;
}

/**
 * Closes the log file of a logger createLogger made, once its command is over: cr's process may
 * go on to run other commands (the cr service). Its lines are already written (pino writes it
 * synchronously).
 */
export function closeLogFile(logger: Logger): void {
  const fd = logFiles.get(logger);
  if (fd === undefined) return;
  logFiles.delete(logger);
  closeSync(fd);
}

/**
 * Opens the log file to append to, creating it private to its owner (a log names paths and
 * processes). A symbolic link is refused: cr usually runs as root, and a link planted where a log
 * is expected would have it append to any file.
 */
function openLogFile(path: string): number {
  try {
    return openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const { code, errno } = err as NodeJS.ErrnoException;
    const description = errno === undefined ? undefined : getSystemErrorMap().get(errno)?.[1];
    const why = code === 'ELOOP' ? 'it is a symbolic link' : `${code ?? (err as Error).message}${description ? ` (${description})` : ''}`;
    throw new CrError(`--log-file ${path}: cannot append to it: ${why}`, ExitCode.Usage);
  }
}
