import { availableParallelism } from 'node:os';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{core,schemas,cli}/test/**/*.test.ts', 'plugins/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    // Kernel tests move the test process between namespaces; forks keep each file in its own process.
    pool: 'forks',
    // End-to-end files spend most of their time waiting on child processes (cr, fixtures), so run
    // at least two at once even on a two-CPU machine (vitest's default there is one): ~40 s, not ~95 s.
    maxWorkers: Math.max(2, availableParallelism()),
    setupFiles: ['test/setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
