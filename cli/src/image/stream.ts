import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable, type Readable } from 'node:stream';
import { CrError, ExitCode } from '@cr/core';

/** `-D -`: the image goes to standard output (checkpoint) or comes from standard input (restore), as with --stream. */
export const STDIO = '-';

/** `cr-stream-PID-XXXXXX`: the spool of the cr with that PID. */
const SPOOL_NAME = /^cr-stream-(\d+)-[A-Za-z0-9]{6}$/;

/**
 * A private directory (0700) under $TMPDIR that holds a streamed image while cr puts it
 * together (checkpoint) or takes it apart (restore): the image is checked and used exactly as an
 * image directory is. Removed when the command is done; a cr killed by SIGKILL cannot remove
 * it, so the next stream removes the spools of this user's cr processes that are gone.
 */
export class StreamSpool {
  private constructor(private readonly dir: string) {}

  static create(isRunning: (pid: number) => boolean): StreamSpool {
    removeAbandonedSpools(tmpdir(), isRunning);
    return new StreamSpool(mkdtempSync(join(tmpdir(), `cr-stream-${process.pid}-`)));
  }

  get imageDir(): string {
    return join(this.dir, 'image');
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function removeAbandonedSpools(dir: string, isRunning: (pid: number) => boolean): void {
  for (const name of readdirSync(dir)) {
    const pid = SPOOL_NAME.exec(name)?.[1];
    if (pid === undefined || isRunning(Number(pid))) continue;
    const path = join(dir, name);
    // Someone else's directory of that name is theirs to remove.
    if (statSync(path, { throwIfNoEntry: false })?.uid !== process.getuid?.()) continue;
    rmSync(path, { recursive: true, force: true });
  }
}

/**
 * cr's standard output, for the image stream: a write resolves once the bytes are in the pipe
 * (or file), and a reader that went away fails the write (EPIPE) instead of ending cr with an
 * unhandled error. Ending this stream does not end process.stdout.
 */
export function standardOutput(): Writable {
  const stdout = process.stdout;
  if (stdout.isTTY) throw new CrError('standard output is a terminal: --stream writes the image there; pipe it into cr restore --stream, or give -D DIR', ExitCode.Usage);
  // The error also fails the write that met it, which is where it is reported.
  stdout.on('error', () => undefined);
  return new Writable({
    write: (chunk: Buffer, _encoding, done) => void stdout.write(chunk, (err) => done(err ?? undefined)),
    final: (done) => done(),
  });
}

/** cr's standard input, where restore --stream reads the image. */
export function standardInput(): Readable {
  if (process.stdin.isTTY) throw new CrError('standard input is a terminal: --stream reads the image from there; pipe cr checkpoint --stream into it, or give -D DIR', ExitCode.Usage);
  return process.stdin;
}
