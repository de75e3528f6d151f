import { homedir, userInfo } from 'node:os';

/**
 * Gives back NODE_EXTRA_CA_CERTS, which cr's launcher (bin/run.js) keeps from node itself. Then
 * fills in SHELL and HOME for a uid with no passwd entry (a container's, a CI job's) before oclif
 * loads: oclif and its stack cleaner ask the password database for both when the environment has
 * neither, and that throws, so such a user would get no cr at all. HOME becomes `/`, as for system
 * accounts; a config there is still refused unless root owns it.
 */
export function settleUserEnvironment(env: NodeJS.ProcessEnv = process.env): void {
  // bin/run.js started node without it; the processes cr starts get it as the user set it.
  if (env.CR_NODE_EXTRA_CA_CERTS !== undefined) {
    env.NODE_EXTRA_CA_CERTS = env.CR_NODE_EXTRA_CA_CERTS;
    delete env.CR_NODE_EXTRA_CA_CERTS;
  }
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
