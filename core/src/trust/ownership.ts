/** The owner and permission bits of a file or directory, as stat(2) gives them. */
export interface Ownership {
  uid: number;
  mode: number;
}

/** "root", or "root or uid 1000". */
export function describeOwners(owners: readonly number[]): string {
  return [...new Set(owners)].map((uid) => (uid === 0 ? 'root' : `uid ${uid}`)).join(' or ');
}

export function describeMode(mode: number): string {
  return (mode & 0o7777).toString(8).padStart(4, '0');
}

/**
 * Why something only `owners` may have written is not safe to trust, or undefined when it is: it
 * must belong to one of them and be writable by neither its group nor others. With
 * `stickyAllowed`, a directory others can write is accepted when it is sticky (like /tmp): no one
 * can rename or remove the entries of another there.
 */
export function ownershipProblem(st: Ownership, owners: readonly number[], options: { stickyAllowed?: boolean } = {}): string | undefined {
  if (!owners.includes(st.uid)) return `belongs to uid ${st.uid}, not to ${describeOwners(owners)}`;
  if ((st.mode & 0o022) === 0 || (options.stickyAllowed && st.mode & 0o1000)) return undefined;
  return `is writable by ${st.mode & 0o002 ? 'others' : 'its group'}${options.stickyAllowed ? ' and not sticky' : ''} (mode ${describeMode(st.mode)})`;
}
