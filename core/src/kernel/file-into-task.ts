import { ImageError } from '../errors.js';
import type { RemoteRange } from './libc.js';
import { PAGE_SIZE, type PageRun } from './pagemap.js';
import type { RemoteTask } from './remote-task.js';

/**
 * Bytes one call reads at most: few calls (each costs a few ptrace round trips), each short
 * enough to end well within the time cr waits for a task to stop, even from a slow disk.
 */
const PIECE_SIZE = 64 << 20;

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
 * stretch of `runs` in order, each after the same ranges were faulted in at once (startPopulateWrite).
 * The bytes go once, from the page cache to where they belong, and only the pages of `runs` are
 * touched (nothing else is faulted in).
 *
 * While each preadv runs, `alongside` (cr's own pass over the same file, which checks its digest)
 * is read up to the end of what that call reads, on this thread, beside the copy rather than after
 * it; it is read to its end before this resolves, so that its failure fails the fill. A short read
 * is an ImageError naming the file, the position and the address. The task's descriptor is closed
 * again in every case.
 */
export async function fillFromFile(task: RemoteTask, file: SourceFile, runs: readonly FilePageRun[], alongside?: AsyncIterable<Uint8Array>): Promise<void> {
  const follower = new Follower(alongside);
  try {
    const pieces = piecesOf(runs, task.iovecCapacity());
    if (pieces.length > 0) await readPieces(task, file, pieces, follower);
    await follower.reach(Infinity);
  } finally {
    await follower.close();
  }
}

async function readPieces(task: RemoteTask, file: SourceFile, pieces: readonly Piece[], follower: Follower): Promise<void> {
  const fds = [task.pullFd(file.fd)];
  try {
    const [fd] = fds as [number];
    const pidfd = task.ownPidfd();
    fds.push(pidfd);
    let populate = true;
    for (const piece of pieces) {
      // Faulting the pages in first, in one call, costs a fraction of the faults the copy takes in fresh memory.
      if (populate) populate = await beside(task.startPopulateWrite(pidfd, piece.ranges), follower, piece.position + piece.length / 2);
      const read = await beside(task.startPreadv(fd, piece.ranges, piece.position), follower, piece.position + piece.length);
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
 * Reads `follower` up to `bytes` while `call` runs in the task, then waits for the call's end:
 * the task must be done with it before anything else happens, the follower's failure included.
 */
async function beside<T>(call: { finish(): T }, follower: Follower, bytes: number): Promise<T> {
  let failure: unknown;
  try {
    await follower.reach(bytes);
  } catch (err) {
    failure = err;
  }
  const result = call.finish();
  if (failure !== undefined) throw failure;
  return result;
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

/** Reads an async stream of byte chunks up to a byte count, remembering how far it got. */
class Follower {
  private readonly chunks: AsyncIterator<Uint8Array> | undefined;
  private consumed = 0;
  private done = false;

  constructor(source: AsyncIterable<Uint8Array> | undefined) {
    this.chunks = source?.[Symbol.asyncIterator]();
    this.done = source === undefined;
  }

  async reach(bytes: number): Promise<void> {
    while (!this.done && this.consumed < bytes) {
      const next = await this.chunks!.next();
      if (next.done) this.done = true;
      else this.consumed += next.value.byteLength;
    }
  }

  /** Ends the stream where it is (its `finally` runs: files close) unless it ran to its end. */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.chunks!.return?.();
  }
}
