// The built module: vitest does not compile TypeScript's .cts files.
import { describe, expect, it } from 'vitest';
import { settleUserEnvironment } from '../dist/user-environment.cjs';

describe('settleUserEnvironment', () => {
  it('gives back the NODE_EXTRA_CA_CERTS the launcher kept from node, so that the processes cr starts have it', () => {
    const env: NodeJS.ProcessEnv = { HOME: '/root', SHELL: '/bin/sh', CR_NODE_EXTRA_CA_CERTS: '/etc/ssl/extra.pem' };
    settleUserEnvironment(env);
    expect(env).toEqual({ HOME: '/root', SHELL: '/bin/sh', NODE_EXTRA_CA_CERTS: '/etc/ssl/extra.pem' });
  });

  it('leaves an environment without it as it is', () => {
    const env: NodeJS.ProcessEnv = { HOME: '/root', SHELL: '/bin/sh' };
    settleUserEnvironment(env);
    expect(env).toEqual({ HOME: '/root', SHELL: '/bin/sh' });
  });
});
