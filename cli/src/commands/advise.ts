import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { Kernel } from '@cr/core';
import { DEFAULT_ADVICE_DIR, ADVICE_DIR_ENV, adviceDir, assertMayAdvise, describeRule, pruneAdvice, readAdvice, removeAdvice, writeAdvice } from '@cr/core/engine';
import { assertSelections } from '@cr/api';
import type { Advice } from '@cr/schemas';
import { CrCommand, typeSelectionFlags } from '../base-command.js';

const LISTS = ['include', 'exclude', 'external'] as const;

export default class Advise extends CrCommand {
  static override summary = 'Advise what a running process\'s checkpoints should save (the kernel proposal\'s cradvise).';
  static override description = `Records advice for process PID, which every later cr checkpoint of it applies after the config file and before flags, listed in the decision table with source "advice FILE" and recorded in the image (cr inspect shows it). Each call adds to the advice the process has; --clear removes it. Without selections, prints the process's advice.

The advice is kept in ${DEFAULT_ADVICE_DIR}/UID/PID-STARTTIME.json (or under $${ADVICE_DIR_ENV}), UID being the process's effective uid and STARTTIME field 22 of /proc/PID/stat: a later process with the same PID never inherits it. Root may advise about any process, another user only about processes that run as that user. A program can write that file itself, in any language: see docs/selecting.md for the format.`;
  static override examples = [
    { description: 'Skip shared memory in general, but include segment 0x1234', command: '<%= config.bin %> advise 1234 --exclude sysvipc-shm --include sysvipc-shm:key=0x1234' },
    { description: 'The queue it holds is checkpointed on its own and must exist at restore', command: '<%= config.bin %> advise 1234 --external sysvipc-msg:key=0x5151' },
    { description: 'Show the advice process 1234 has', command: '<%= config.bin %> advise 1234' },
    { description: 'Remove it', command: '<%= config.bin %> advise 1234 --clear' },
  ];
  static override enableJsonFlag = true;
  static override args = { pid: Args.integer({ description: 'PID of the running process to advise about.', min: 1, required: true }) };
  static override flags = {
    include: Flags.string({ multiple: true, helpValue: 'SELECTOR,...', description: 'Save these types or objects even where a config rule leaves them out: TYPE or TYPE:ATTR=VALUE.' }),
    exclude: Flags.string({ multiple: true, helpValue: 'SELECTOR,...', description: 'Leave these types or objects out: TYPE or TYPE:ATTR=VALUE.' }),
    external: Flags.string({ multiple: true, helpValue: 'SELECTOR,...', description: 'Leave these out as objects the process uses that must exist at restore: TYPE or TYPE:ATTR=VALUE.' }),
    clear: Flags.boolean({ description: 'Remove the advice the process has (before adding any given with this call).' }),
  };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(Advise);
    await this.setUp(flags.config);
    const added = typeSelectionFlags(flags);
    for (const [flag, layer] of Object.entries(added)) assertSelections(this.registry, `flag ${flag}`, layer.checkpoint, undefined);
    const kernel = this.container.resolve(Kernel);
    const { comm } = kernel.procfs.assertUserProcess(args.pid);
    assertMayAdvise(kernel, args.pid);
    const dir = adviceDir();

    if (flags.clear) removeAdvice(dir, kernel, args.pid);
    let current = undefined;
    if (!flags.clear) {
      const reading = readAdvice(dir, kernel, args.pid);
      for (const w of reading.warnings) this.warn(w);
      current = reading.advice;
    }
    if (Object.keys(added).length > 0) {
      const advice: Advice = { ...current?.advice };
      for (const list of LISTS) {
        const more = added[`--${list}`]?.checkpoint?.[list] ?? [];
        if (more.length > 0) advice[list] = [...new Set([...(advice[list] ?? []), ...more])];
      }
      pruneAdvice(dir, kernel);
      current = { file: writeAdvice(dir, kernel, args.pid, advice), advice };
    }

    if (!this.jsonEnabled()) {
      if (!current) this.log(`PID ${args.pid} (${comm}) has no advice${flags.clear ? ' now' : ''}`);
      else this.log(`advice for PID ${args.pid} (${comm}) in ${current.file}:\n${describeAdvice(current.advice).map((l) => `  ${l}`).join('\n')}`);
    }
    return { pid: args.pid, file: current?.file ?? null, advice: current?.advice ?? null };
  }
}

/** One line per rule, in the order they apply: "exclude   sysvipc-shm". */
export function describeAdvice(advice: Advice): string[] {
  return [
    ...(advice.rules ?? []).map((r) => `${r.decision.padEnd(9)} ${describeRule(r)}`),
    ...LISTS.flatMap((list) => (advice[list] ?? []).map((s) => `${list.padEnd(9)} ${s}`)),
  ];
}
