import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{core,schemas,cli}/test/**/*.test.ts', 'plugins/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Kernel tests move the test process between namespaces; forks keep each file in its own process.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
