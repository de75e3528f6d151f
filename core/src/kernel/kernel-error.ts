import { getSystemErrorMap, getSystemErrorName } from 'node:util';
import { CrError, ExitCode } from '../errors.js';

/** Name of an errno value ("EPERM"), or "errno N" for one Node does not know. */
export function errnoName(errno: number): string {
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `errno ${errno}`;
  }
}

/**
 * A failed kernel call. It names the call, the errno and the object it was aimed at, e.g.
 * `setns(/proc/42/ns/uts): EPERM (Operation not permitted)`.
 */
export class KernelError extends CrError {
  readonly syscall: string;
  readonly errno: number;
  readonly code: string;
  readonly target: string | undefined;

  constructor(syscall: string, errno: number, target?: string, description?: string) {
    const code = errnoName(errno);
    const what = target === undefined ? syscall : `${syscall}(${target})`;
    const text = description ?? getSystemErrorMap().get(-errno)?.[1];
    super(`${what}: ${code}${text ? ` (${text})` : ''}`, ExitCode.Failure);
    this.syscall = syscall;
    this.errno = errno;
    this.code = code;
    this.target = target;
  }
}
