import { stripVTControlCharacters } from 'node:util';
import { CrError, ExitCode } from '@cr/core';
import * as Errors from '@oclif/core/errors';

/** What `cr … --json` prints when it fails: the error, and the warnings given before it. */
export interface ErrorJson {
  error: { name: string; message: string; exitCode: number };
  warnings: string[];
}

export function errorJson(err: CrError, warnings: readonly string[] = []): ErrorJson {
  return { error: { name: err.name, message: err.message, exitCode: err.exitCode }, warnings: [...warnings] };
}

/**
 * The one-line usage error (exit 2) that an oclif parser error stands for: "unknown flag
 * --bogus", "missing argument DIR", "--kill and --dry-run cannot be given together" …, naming
 * the command whose help says more, as it is typed (oclif's ids join topic and command with a colon).
 */
export function usageError(err: Error, id: string | undefined): CrError {
  const command = id?.replaceAll(':', ' ');
  const help = command ? `; see cr ${command} --help` : '; see cr --help';
  return new CrError(`${command ? `${command}: ` : ''}${describeParseError(err)}${help}`, ExitCode.Usage);
}

/**
 * oclif does not export its parser's error classes; they are told apart by name, and any other
 * (a bad integer, exclusive flags, a missing value …) keeps oclif's own words, on one line.
 */
function describeParseError(err: Error & { flags?: string[]; args?: unknown[] }): string {
  const plural = (n: number) => (n === 1 ? '' : 's');
  switch (err.constructor.name) {
    case 'NonExistentFlagsError':
      return `unknown flag${plural(err.flags!.length)} ${err.flags!.join(', ')}`;
    case 'UnexpectedArgsError':
      return `unexpected argument${plural(err.args!.length)} ${err.args!.join(' ')}`;
    case 'RequiredArgsError': {
      const args = err.args as { name: string; description?: string }[];
      return `missing argument${plural(args.length)} ${args.map((a) => `${a.name.toUpperCase()}${a.description ? ` (${a.description.replace(/\.$/, '')})` : ''}`).join(', ')}`;
    }
    default: {
      const unknownCommand = /^command (\S+) not found\.?$/i.exec(err.message);
      return unknownCommand ? `unknown command ${unknownCommand[1]}` : oneLine(err.message);
    }
  }
}

/** oclif's several lines (a header, indented reasons, "See more help with --help") as one. */
function oneLine(message: string): string {
  return stripVTControlCharacters(message)
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !/^See more help with --help$/.test(line) && !/^The following errors? occurred:$/.test(line))
    .join('; ');
}

/** Whether `argv` asks for JSON output: `--json` before any `--`, as oclif reads it. */
export function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf('--');
  const json = argv.indexOf('--json');
  return json !== -1 && (end === -1 || json < end);
}

/**
 * An error of oclif's (a CLIError, or the ExitError of a command that reported its own error),
 * told by its shape rather than its class: oclif's plugins (help, autocomplete) throw them from
 * their own copy of @oclif/core, not the one bundled into cr's CLI.
 */
function oclifError(err: unknown): (Errors.CLIError & { code?: string }) | undefined {
  return err instanceof Error && typeof (err as Partial<Errors.CLIError>).oclif === 'object' ? (err as Errors.CLIError) : undefined;
}

/**
 * Reports an error that happened outside any command (an unknown command, a bad top-level flag)
 * as cr does inside them, and sets the exit code; an ExitError is a command that already
 * reported its own.
 */
export function reportOutsideCommand(err: unknown, argv: readonly string[]): void {
  const oclif = oclifError(err);
  if (oclif?.code === 'EEXIT') {
    process.exitCode = oclif.oclif.exit;
    return;
  }
  const error = err instanceof CrError ? err : oclif ? usageError(oclif, undefined) : new CrError(String((err as Error)?.message ?? err), ExitCode.Failure);
  if (wantsJson(argv)) process.stdout.write(`${JSON.stringify(errorJson(error), null, 2)}\n`);
  else process.stderr.write(`cr: ${error.message}\n`);
  process.exitCode = error.exitCode;
}
