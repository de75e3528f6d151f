/**
 * Exit codes of the cr command. Each error class below carries one, so the CLI never has to
 * guess how bad a failure was.
 */
export const ExitCode = {
  Ok: 0,
  Failure: 1,
  Usage: 2,
  Config: 3,
  Image: 4,
  Target: 5,
  Plugin: 6,
  Unsupported: 7,
  /** SIGINT, SIGTERM or SIGHUP: cr let every target go and removed what it had written. */
  Interrupted: 130,
} as const;
export type ExitCodeValue = (typeof ExitCode)[keyof typeof ExitCode];

/** Base of every error cr reports to a user: the message says what and what to do. */
export class CrError extends Error {
  readonly exitCode: ExitCodeValue;
  constructor(message: string, exitCode: ExitCodeValue = ExitCode.Failure, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.exitCode = exitCode;
  }
}

/** The config file (or a flag standing in for a config key) is not valid. */
export class ConfigError extends CrError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Config, options);
  }
}

/** An image is missing, unreadable, corrupt, or from a newer format. */
export class ImageError extends CrError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Image, options);
  }
}

/** The checkpoint target (process, namespace) does not exist or cannot be used. */
export class TargetError extends CrError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Target, options);
  }
}

/** A plugin is missing, malformed, incompatible, or its types form a cycle. */
export class PluginError extends CrError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Plugin, options);
  }
}

/** The target uses something cr (or this kernel) cannot checkpoint or restore. */
export class UnsupportedError extends CrError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Unsupported, options);
  }
}

/** cr was asked to stop (Ctrl-C, SIGTERM, SIGHUP) and undid its work before exiting. */
export class InterruptedError extends CrError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Interrupted, options);
  }
}

/**
 * Thrown by a plugin's `freeze` when, once its object is stopped, what was collected before no
 * longer holds (a process forked or a child exited in between): cr lets everything go, collects
 * again from the start, and gives up with a TargetError after a few tries.
 */
export class CollectAgainError extends CrError {
  constructor(message: string, options?: ErrorOptions) {
    super(message, ExitCode.Target, options);
  }
}
