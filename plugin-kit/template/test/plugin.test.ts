import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkpointAndRestore } from '@cr/plugin-kit';
import type { __CLASS__Options, __CLASS__Record } from '../src/record.js';

/** The built plugin, loaded by cr as a config's `plugins` entry would load it. */
const plugin = fileURLToPath(new URL('../src/index.js', import.meta.url));
const filterOf = (pid: number) => parseInt(readFileSync(`/proc/${pid}/coredump_filter`, 'utf8'), 16);

/**
 * Runs a program that prints "ready" and then counts, gives it core dump filter 0x7, and
 * checkpoints and restores it with the plugin (and these options) loaded.
 */
function roundTrip(options?: __CLASS__Options) {
  return checkpointAndRestore({
    plugin,
    ...(options ? { pluginOptions: { '__TYPE__': options } } : {}),
    command: 'perl',
    args: ['-e', '$| = 1; print "ready\\n"; for (my $n = 1; ; $n++) { print "$n\\n"; select(undef, undef, undef, 0.1) }'],
    readyWhen: /ready/,
    prepare: (pid) => writeFileSync(`/proc/${pid}/coredump_filter`, '0x7'),
  });
}

test('a restored process has the core dump filter it had, and carries on', async () => {
  const run = await roundTrip();
  try {
    assert.deepEqual(run.records<__CLASS__Record>('__TYPE__'), [{ filter: 0x7 }]);
    assert.equal(filterOf(run.pid), 0x7);
    const counted = run.output().match(/\d+\n/g)?.length ?? 0;
    await run.waitForOutput(new RegExp(`^ready\\n(\\d+\\n){${counted + 2}}`));
  } finally {
    run.dispose();
  }
});

test('pluginOptions.override is the filter every process is restored with', async () => {
  const run = await roundTrip({ override: 0x3 });
  try {
    assert.deepEqual(run.records<__CLASS__Record>('__TYPE__'), [{ filter: 0x7 }]);
    assert.equal(filterOf(run.pid), 0x3);
  } finally {
    run.dispose();
  }
});
