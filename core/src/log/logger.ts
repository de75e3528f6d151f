import type { InjectionToken } from 'tsyringe';

/** A log call: a message, or fields (`err` for an error) and a message, as pino takes them. */
export interface LogFn {
  (message: string): void;
  (fields: object, message?: string): void;
}

/**
 * What cr logs through: the part of pino's logger that cr and plugins use, so that a pino logger,
 * or anything shaped like it, can be passed in. Levels, from the least to the most detailed:
 * error, warn, info (phases and their timings), debug (each object's steps and decisions), trace.
 */
export interface Logger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  /** A logger that adds `bindings` to every line (`{plugin: "mm", object: "mm:42"}`). */
  child(bindings: Record<string, unknown>): Logger;
}

const ignore = () => {};

/** Logs nothing: what the engines use when nobody gave them a logger. */
export const silentLogger: Logger = { error: ignore, warn: ignore, info: ignore, debug: ignore, trace: ignore, child: () => silentLogger };

/** The container token of the Logger the engines log through (silentLogger unless one is registered). */
export const LOGGER: InjectionToken<Logger> = Symbol('cr.Logger');
