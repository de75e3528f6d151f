import { ImageError } from '../errors.js';
import type { RemoteRange } from './libc.js';
import { PAGE_SIZE, type PageRun } from './pagemap.js';
import type { RemoteTask, RunningCall } from './remote-task.js';

/**
 * Bytes one call reads at most: few calls (each costs a few ptrace round trips), each short
 * enough to end well within the time cr waits for a task to stop, even from a slow disk, and a
 * small part of a large fill, the unit in which cr and the task share one (see fillFromFile).
 */
const PIECE_SIZE = 32 << 20;

/** Pages of a task and where their bytes are in a file: `pages` pages at `address`, from byte `position` of the file on. */
export interface FilePageRun extends PageRun {
  position: number;
}

/** A file cr holds open, for a task to read from. */
export interface SourceFile {
  /** cr's descriptor of it. */
  readonly fd: number;
  /** What errors call it. */
  readonly path: string;
}

/** cr's own pass over a file a task fills from (see fillFromFile). */
export interface FillAlongside {
  /** The file's bytes from its start, in order, in chunks: reading them checks its digest. */
  chunks: AsyncIterable<Uint8Array>;
  /** Writes `data` into the task's `ranges` (its bytes in their order), for the pieces cr takes on itself. */
  write?(data: Uint8Array, ranges: readonly RemoteRange[]): void;
}

/** What one preadv in the task reads: `length` bytes of the file from `position` on, into `ranges`. */
interface Piece {
  position: number;
  length: number;
  ranges: RemoteRange[];
}

/**
 * Has the stopped `task` read its pages from `file` itself, as CRIU's restorer does: cr hands it
 * the open file (pidfd_getfd, so that the task need not see the path) and runs preadv in it, at
 * most PIECE_SIZE bytes and as many ranges as its scratch area holds per call, each file-contiguous
 * stretch of `runs`, each after the same ranges were faulted in at once (startPopulateWrite). The
 * bytes go once, from the page cache to where they belong, and only the pages of `runs` are
 * touched (nothing else is faulted in).
 *
 * While each call runs in the task, cr reads `alongside` a chunk at a time, until the call has
 * ended; it is read to its end before this resolves, so that its failure fails the fill. With
 * `alongside.write`, cr and the task share the work: the task takes pieces from the end of the
 * file, cr from the start, each piece the next one free when it gets there, until they meet; cr
 * writes the bytes of its pieces as it reads them. Most of the cost on either side is faulting
 * fresh pages in, so on two CPUs the fill takes about the time of the part each side did, and
 * whichever side is slower (a busy CPU, a slow copy) does less. A short read is an ImageError
 * naming the file, the position and the address. The task's descriptor is closed again in every case.
 */
export async function fillFromFile(task: RemoteTask, file: SourceFile, runs: readonly FilePageRun[], alongside?: FillAlongside): Promise<void> {
  const pieces = new SharedPieces(piecesOf([...runs].sort((a, b) => a.position - b.position), task.iovecCapacity()));
  const follower = new Follower(alongside, pieces);
  try {
    if (!pieces.exhausted()) await readPieces(task, file, pieces, follower);
    await follower.readToEnd();
  } finally {
    await follower.close();
  }
}

async function readPieces(task: RemoteTask, file: SourceFile, pieces: SharedPieces, follower: Follower): Promise<void> {
  const fds = [task.pullFd(file.fd)];
  try {
    const [fd] = fds as [number];
    const pidfd = task.ownPidfd();
    fds.push(pidfd);
    let populate = true;
    for (let piece = pieces.takeLast(); piece; piece = pieces.takeLast()) {
      // Faulting the pages in first, in one call, costs a fraction of the faults the copy takes in fresh memory.
      if (populate) populate = await whileRunning(task.startPopulateWrite(pidfd, piece.ranges), follower);
      const read = await whileRunning(task.startPreadv(fd, piece.ranges, piece.position), follower);
      if (read !== piece.length) throw shortRead(task.pid, file, piece, read);
    }
  } catch (err) {
    // The failure is what the caller must hear of, not a close that fails after it (the task may be gone).
    for (const fd of fds) closeQuietly(task, fd);
    throw err;
  }
  for (const fd of fds) task.close(fd);
}

function closeQuietly(task: RemoteTask, fd: number): void {
  try {
    task.close(fd);
  } catch {
    // The failure that brought us here is the one reported.
  }
}

/**
 * Moves `follower` on a chunk at a time while `call` runs in the task (so that cr works while the
 * task does, and neither waits for the other), then waits for the call's end: the task must be
 * done with it before anything else happens, the follower's failure included.
 */
async function whileRunning<T>(call: RunningCall<T>, follower: Follower): Promise<T> {
  let failure: unknown;
  try {
    while (call.poll() === undefined && (await follower.step()));
  } catch (err) {
    failure = err;
  }
  const result = call.finish();
  if (failure !== undefined) throw failure;
  return result;
}

/** The pieces of a fill, in file order, taken by the task from the end and by cr from the start. */
class SharedPieces {
  /** Pieces before this one are cr's. */
  private front = 0;
  /** Pieces from this one on are the task's. */
  private back: number;

  constructor(readonly pieces: readonly Piece[]) {
    this.back = pieces.length;
  }

  exhausted(): boolean {
    return this.front >= this.back;
  }

  /** The last free piece, now the task's; undefined once none is free. */
  takeLast(): Piece | undefined {
    return this.exhausted() ? undefined : this.pieces[--this.back];
  }

  /**
   * The parts of cr's pieces among the bytes [position, position + length) of the file, each as
   * its offset among those bytes and the task's ranges it goes to; a free piece that they begin
   * becomes cr's. cr asks for every byte of the file in order, so it sees each piece it takes from
   * its first byte.
   */
  crParts(position: number, length: number): { offset: number; length: number; ranges: RemoteRange[] }[] {
    const parts: { offset: number; length: number; ranges: RemoteRange[] }[] = [];
    for (let i = 0; i < this.back; i++) {
      const piece = this.pieces[i]!;
      const from = Math.max(piece.position, position);
      const to = Math.min(piece.position + piece.length, position + length);
      if (from >= to) continue;
      if (i >= this.front) {
        if (i > this.front || from !== piece.position) break;
        this.front++;
      }
      parts.push({ offset: from - position, length: to - from, ranges: rangesWithin(piece.ranges, from - piece.position, to - from) });
    }
    return parts;
  }
}

/** The ranges that `length` bytes from `offset` of consecutive `ranges` fall in. */
function rangesWithin(ranges: readonly RemoteRange[], offset: number, length: number): RemoteRange[] {
  const within: RemoteRange[] = [];
  let at = 0;
  for (const r of ranges) {
    const from = Math.max(offset, at);
    const to = Math.min(offset + length, at + r.length);
    if (from < to) within.push({ address: r.address + BigInt(from - at), length: to - from });
    at += r.length;
  }
  return within;
}

/** Cuts `runs` into preadv calls: each reads one stretch of the file, at most PIECE_SIZE bytes into at most `capacity` ranges. */
function piecesOf(runs: readonly FilePageRun[], capacity: number): Piece[] {
  const pieces: Piece[] = [];
  let current: Piece | undefined;
  for (const run of runs) {
    for (let done = 0; done < run.pages * PAGE_SIZE; ) {
      const position = run.position + done;
      if (!current || current.position + current.length !== position || current.length === PIECE_SIZE || current.ranges.length === capacity) {
        current = { position, length: 0, ranges: [] };
        pieces.push(current);
      }
      const length = Math.min(run.pages * PAGE_SIZE - done, PIECE_SIZE - current.length);
      current.ranges.push({ address: run.address + BigInt(done), length });
      current.length += length;
      done += length;
    }
  }
  return pieces;
}

function shortRead(pid: number, file: SourceFile, piece: Piece, read: number): ImageError {
  return new ImageError(
    `${file.path} is truncated: PID ${pid} read only ${read} of ${piece.length} bytes at position ${piece.position} of it, ` +
      `stopping at 0x${addressAt(piece.ranges, read).toString(16)}, where its memory was to be restored`,
  );
}

/** The address `offset` bytes into `ranges` taken one after another. */
function addressAt(ranges: readonly RemoteRange[], offset: number): bigint {
  for (const r of ranges) {
    if (offset < r.length) return r.address + BigInt(offset);
    offset -= r.length;
  }
  const last = ranges[ranges.length - 1]!;
  return last.address + BigInt(last.length);
}

/** cr's pass over the file (FillAlongside), a chunk at a time, writing its pieces as it goes. */
class Follower {
  private readonly chunks: AsyncIterator<Uint8Array> | undefined;
  private readonly write: FillAlongside['write'];
  private done = false;
  private position = 0;

  constructor(
    alongside: FillAlongside | undefined,
    private readonly pieces: SharedPieces,
  ) {
    this.chunks = alongside?.chunks[Symbol.asyncIterator]();
    this.write = alongside?.write?.bind(alongside);
    this.done = alongside === undefined;
  }

  async readToEnd(): Promise<void> {
    while (await this.step());
  }

  /** Reads (and writes) one more chunk; false once the stream has ended. */
  async step(): Promise<boolean> {
    if (this.done) return false;
    const next = await this.chunks!.next();
    if (next.done) {
      this.done = true;
      return false;
    }
    const chunk = next.value;
    if (this.write) {
      for (const part of this.pieces.crParts(this.position, chunk.byteLength)) this.write(chunk.subarray(part.offset, part.offset + part.length), part.ranges);
    }
    this.position += chunk.byteLength;
    return true;
  }

  /** Ends the stream where it is (its `finally` runs: files close) unless it ran to its end. */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.chunks!.return?.();
  }
}
