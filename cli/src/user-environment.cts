import { homedir, userInfo } from 'node:os';

/**
 * Fills in SHELL and HOME for a uid with no passwd entry (a container's, a CI job's) before oclif
 * loads: oclif and its stack cleaner ask the password database for both when the environment has
 * neither, and that throws, so such a user would get no cr at all. HOME becomes `/`, as for system
 * accounts; a config there is still refused unless root owns it.
 */
export function settleUserEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  if (!env.HOME) {
    try {
      homedir();
    } catch {
      env.HOME = '/';
    }
  }
  if (!env.SHELL) {
    try {
      env.SHELL = userInfo().shell ?? 'sh';
    } catch {
      env.SHELL = 'sh';
    }
  }
}
