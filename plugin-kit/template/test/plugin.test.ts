import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { checkpointAndRestore } from '@cr/plugin-kit';
import type { __CLASS__Record } from '../src/record.js';

/** The built plugin, loaded by cr as a config's `plugins` entry would load it. */
const plugin = fileURLToPath(new URL('../src/index.js', import.meta.url));
/** A program that prints a line, then counts; it goes on counting after the restore. */
const program = ['perl', '-e', '$| = 1; print "ready\\n"; for (my $n = 1; ; $n++) { print "$n\\n"; select(undef, undef, undef, 0.1) }'];
const filterOf = (pid: number) => parseInt(readFileSync(`/proc/${pid}/coredump_filter`, 'utf8'), 16);

test('a restored process has the core dump filter it had, and carries on', async () => {
  const run = await checkpointAndRestore({
    plugin,
    command: program[0]!,
    args: program.slice(1),
    readyWhen: /ready/,
    prepare: (pid) => writeFileSync(`/proc/${pid}/coredump_filter`, '0x7'),
  });
  try {
    assert.deepEqual(run.records<__CLASS__Record>('__TYPE__'), [{ filter: 0x7 }]);
    assert.equal(filterOf(run.pid), 0x7);
    const counted = run.output().match(/\d+\n/g)?.length ?? 0;
    await run.waitForOutput(new RegExp(`^(ready\\n)(\\d+\\n){${counted + 2}}`));
  } finally {
    run.dispose();
  }
});

test('pluginOptions.override is the filter every process is restored with', async () => {
  const run = await checkpointAndRestore({
    plugin,
    pluginOptions: { '__TYPE__': { override: 0x3 } },
    command: program[0]!,
    args: program.slice(1),
    readyWhen: /ready/,
    prepare: (pid) => writeFileSync(`/proc/${pid}/coredump_filter`, '0x7'),
  });
  try {
    assert.deepEqual(run.records<__CLASS__Record>('__TYPE__'), [{ filter: 0x7 }]);
    assert.equal(filterOf(run.pid), 0x3);
  } finally {
    run.dispose();
  }
});
