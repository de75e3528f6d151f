import { lstatSync, mkdirSync, readdirSync, rmSync, statfsSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ImageError } from '../errors.js';
import { Procfs } from '../kernel/procfs.js';
import { nodeFsError } from '../kernel/sysctl.js';

const procfs = new Procfs();

const DIR_MODE = 0o700;

/**
 * File systems that are views of the kernel, not storage: an image cannot live there, and some of
 * them (procfs) make Node's recursive mkdir loop forever.
 */
const KERNEL_FILESYSTEMS = new Map<number, string>([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0xcafe4a11, 'bpffs'],
  [0x62656570, 'configfs'],
  [0x6165676c, 'pstorefs'],
  [0xde5e81e4, 'efivarfs'],
  [0x6e736673, 'nsfs'],
]);

/** `.NAME.cr-partial-PID-STARTTIME-RANDOM`: the writer's PID and start time tell whether it still runs. */
const PARTIAL = /^\..+\.cr-partial-(\d+)-(\d+)-[0-9a-f]{8}$/;

/**
 * Checks an image path before any target is touched, and creates its missing parent directories
 * one by one (0700): it must not be under a kernel file system, must not be a file, and must not
 * be a directory that holds anything. Returns the absolute path.
 */
export function prepareImagePath(dir: string): string {
  const imageDir = resolve(dir);
  const existing = lstatOrUndefined(imageDir);
  const ancestor = existing ? imageDir : nearestExisting(dirname(imageDir));
  const fsType = KERNEL_FILESYSTEMS.get(Number(statfsSync(ancestor).type));
  if (fsType) throw new ImageError(`${dir} is on ${fsType} (${ancestor}), a view of the kernel that cannot hold files; give an image directory on a disk`);
  if (existing?.isSymbolicLink()) throw new ImageError(`${dir} is a symbolic link; give the image directory itself`);
  if (existing && !existing.isDirectory()) throw new ImageError(`${dir} exists and is not a directory; give a new image directory`);
  if (existing && readdirSync(imageDir).length > 0) throw new ImageError(`${dir} is not empty; give a new image directory or remove the old image first`);
  makeParents(dirname(imageDir), ancestor);
  return imageDir;
}

/** The name of a new partial directory beside `imageDir`, for this process. */
export function partialDirFor(imageDir: string, random: string): string {
  const startTime = procfs.stat(process.pid).startTime;
  return join(dirname(imageDir), `.${basename(imageDir)}.cr-partial-${process.pid}-${startTime}-${random}`);
}

/**
 * Removes the partial directories that checkpoints which died (SIGKILL, a crash, a power cut)
 * left in `parent`: those whose writer no longer runs. Only directories this user owns are
 * touched. Returns their paths.
 */
export function removeStalePartials(parent: string): string[] {
  const removed: string[] = [];
  for (const name of readdirSync(parent)) {
    const m = PARTIAL.exec(name);
    if (!m) continue;
    const path = join(parent, name);
    const st = lstatOrUndefined(path);
    if (!st?.isDirectory() || st.uid !== process.geteuid!()) continue;
    if (writerRuns(Number(m[1]), BigInt(m[2]!))) continue;
    rmSync(path, { recursive: true, force: true });
    removed.push(path);
  }
  return removed;
}

function writerRuns(pid: number, startTime: bigint): boolean {
  try {
    return procfs.stat(pid).startTime === startTime;
  } catch {
    return false;
  }
}

function nearestExisting(path: string): string {
  for (let p = path; ; p = dirname(p)) {
    if (lstatOrUndefined(p)) return p;
    if (p === dirname(p)) return p;
  }
}

/** mkdir of each missing directory from `ancestor` down to `dir`, with errors that name the path. */
function makeParents(dir: string, ancestor: string): void {
  const missing: string[] = [];
  for (let p = dir; p !== ancestor && !lstatOrUndefined(p); p = dirname(p)) missing.unshift(p);
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: DIR_MODE });
    } catch (err) {
      throw new ImageError(`cannot create the directory ${p} for the image: ${nodeFsError('mkdir', p, err).message}`);
    }
  }
  const st = lstatOrUndefined(dir);
  if (!st?.isDirectory()) throw new ImageError(`${dir} is not a directory; the image cannot be written below it`);
}

function lstatOrUndefined(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    return undefined;
  }
}
