import { realpathSync, statSync, type Stats } from 'node:fs';
import { dirname, resolve, sep } from 'node:path';
import type { CrError } from '../errors.js';
import { describeOwners, ownershipProblem } from './ownership.js';

/** Directories (colon-separated, or "*") whose config files and plugins cr loads whoever owns them. */
export const SAFE_DIRECTORIES_ENV = 'CR_SAFE_DIRECTORIES';

/**
 * Config files and plugins are code and policy that cr runs, usually as root. Like git's
 * safe.directory rule, cr loads one only when the file and its directory belong to root or to the
 * user running cr and no one else can write them, or when the user listed its directory in
 * CR_SAFE_DIRECTORIES. Otherwise a file planted by another user in a world-writable directory
 * above the working directory would run as root.
 */
export function assertTrustedFile(
  file: string,
  what: string,
  Refusal: new (message: string) => CrError,
  env: NodeJS.ProcessEnv = process.env,
  euid: number = process.geteuid!(),
): void {
  const problem = untrustedReason(file, euid);
  if (problem === undefined || listedSafe(file, env)) return;
  throw new Refusal(
    `refusing to load ${what} ${file}: ${problem}; cr loads config files and plugins only if they and their directory belong to ${describeOwners([0, euid])} ` +
      `and no one else can write them. If you trust it, allow its directory: ${SAFE_DIRECTORIES_ENV}=${dirname(resolve(file))} (colon-separated; "*" allows any)`,
  );
}

/** Why `file` is not safe to load for user `euid`, or undefined. A symlink is checked where it points and where it was found. */
export function untrustedReason(file: string, euid: number): string | undefined {
  const path = resolve(file);
  const real = realpathSync(path);
  const st = statSync(real);
  if (!st.isFile()) return 'it is not a regular file';
  const checks: [string, Stats][] = [
    [real === path ? 'it' : `its target ${real}`, st],
    [`its directory ${dirname(real)}`, statSync(dirname(real))],
  ];
  if (real !== path) checks.push([`the directory of the symlink, ${dirname(path)},`, statSync(dirname(path))]);
  for (const [what, stats] of checks) {
    const problem = ownershipProblem(stats, [0, euid]);
    if (problem) return `${what} ${problem}`;
  }
  return undefined;
}

/** Whether the user listed the directory of `file` (or one above it) in CR_SAFE_DIRECTORIES. */
export function listedSafe(file: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const entries = (env[SAFE_DIRECTORIES_ENV] ?? '').split(':').filter(Boolean);
  if (entries.includes('*')) return true;
  const dirs = [dirname(resolve(file)), dirname(realOrSelf(resolve(file)))];
  const allowed = entries.flatMap((e) => [resolve(e), realOrSelf(resolve(e))]);
  return dirs.some((d) => allowed.some((a) => d === a || d.startsWith(a.endsWith(sep) ? a : a + sep)));
}

function realOrSelf(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return path;
  }
}
