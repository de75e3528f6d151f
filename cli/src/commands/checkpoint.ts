import { resolve } from 'node:path';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { CrError, ExitCode, Kernel } from '@cr/core';
import { CheckpointEngine, adviceDir, policyFromConfig, readAdvice, writeImageStream, type AppliedAdvice, type CollectedObjectEntry } from '@cr/core/engine';
import { COMPRESSIONS, type CheckpointTarget } from '@cr/schemas';
import { assertSelections } from '@cr/api';
import { CrCommand, TCP_ESTABLISHED_DESCRIPTION, profileFlag, selectionFlags, tcpEstablishedLayer, typeSelectionFlags } from '../base-command.js';
import { STDIO, StreamSpool, standardOutput } from '../image/stream.js';
import { abortOnSignals } from '../interrupts.js';
import { renderTable } from '../table.js';

/** Enough for a mostly idle program: what it writes while a round runs is what it writes in the next. */
const DEFAULT_PRE_COPY_ROUNDS = 4;

export default class Checkpoint extends CrCommand {
  static override summary = "Save a process's resources, or an IPC namespace on its own, into an image.";
  static override description = `Saves every resource of the target that the installed plugins cover (see cr types), unless policy leaves it out. --only and --exclude select whole resource types (or groups: sysvipc, namespaces), like the kernel proposal's CHECKPOINT_ALL & ~CHECKPOINT_SYSVIPC, and single objects by their attributes (TYPE:ATTR=VALUE). Rules come from the config file (and its --profile), then the process's own advice (cr advise), then flags. An object left out that the saved process uses (a shared memory segment it has attached), or one marked --external, is recorded as an external reference: restore must find it alive. A selector that matches no collected object is a warning, or with --strict an error before anything is saved. The image is written atomically: if the checkpoint fails, no image appears at the path and the target is left as it was.`;
  static override examples = [
    { description: 'Save process 1234; it carries on running', command: '<%= config.bin %> checkpoint 1234 -D /var/lib/cr/app' },
    { description: 'Save process 1234 alone, refusing it if it has child processes', command: '<%= config.bin %> checkpoint 1234 -D img --no-tree' },
    { description: 'Save process 1234 and stop it once the image is safely written', command: '<%= config.bin %> checkpoint 1234 -D /var/lib/cr/app --kill' },
    { description: 'Save only its UTS namespace', command: '<%= config.bin %> checkpoint 1234 -D img --only uts-ns' },
    { description: 'Save everything but its IPC namespace', command: '<%= config.bin %> checkpoint 1234 -D img --exclude ipc-ns' },
    { description: 'Save an IPC namespace with no process at all', command: '<%= config.bin %> checkpoint --ipc-ns /run/cr/pins/ipc -D img' },
    {
      description: 'Skip shared memory in general, but include segment 0x1234, and leave queue 3 out',
      command: '<%= config.bin %> checkpoint --ipc-ns 1234 -D img --exclude sysvipc-shm --include sysvipc-shm:key=0x1234 --exclude sysvipc-msg:id=3',
    },
    { description: 'Leave the SysV IPC objects out: they are checkpointed on their own, and must exist at restore', command: '<%= config.bin %> checkpoint 1234 -D img --external sysvipc' },
    { description: 'Leave out the files it has open under /var/log', command: "<%= config.bin %> checkpoint 1234 -D img --exclude 'files:path=/var/log/**'" },
    { description: 'Use the settings of profile nosysv of the config file', command: '<%= config.bin %> checkpoint 1234 -D img --profile nosysv' },
    { description: 'Show what would be saved, and why, without saving', command: '<%= config.bin %> checkpoint 1234 --dry-run' },
    { description: 'Move process 1234 to another machine: stream the image, kill it once all is sent', command: '<%= config.bin %> checkpoint 1234 --stream --kill | ssh other cr restore --stream --detach' },
    { description: 'Store its memory compressed with zstd', command: '<%= config.bin %> checkpoint 1234 -D img --compress zstd' },
    { description: 'Copy its memory while it runs, so that it is frozen only to copy what it wrote meanwhile', command: '<%= config.bin %> checkpoint 1234 -D img --pre-copy' },
    { description: 'Save only the memory that changed since the image img1', command: '<%= config.bin %> checkpoint 1234 -D img2 --parent img1' },
    { description: 'Save a server with its clients connected, kill it, and let cr restore bring the connections back', command: '<%= config.bin %> checkpoint 1234 -D img --kill --tcp-established' },
  ];
  static override usage = [
    '<%= command.id %> PID (-D DIR | --stream) [--no-tree] [--pre-copy[=N]] [--parent IMG] [--compress zstd|lz4] [--kill] [--tcp-established] [--strict] [--only TYPE,...] [--include SELECTOR,...] [--exclude SELECTOR,...] [--external SELECTOR,...] [--profile NAME] [--config FILE] [--json]',
    '<%= command.id %> --ipc-ns TARGET (-D DIR | --stream) [--compress zstd|lz4] [--strict] [--only TYPE,...] [--include SELECTOR,...] [--exclude SELECTOR,...] [--external SELECTOR,...] [--profile NAME] [--config FILE] [--json]',
    '<%= command.id %> (PID | --ipc-ns TARGET) --dry-run [--strict] [selection flags as above] [--json]',
  ];
  static override enableJsonFlag = true;
  static override args = {
    pid: Args.integer({ description: 'PID of the process to checkpoint.', min: 1 }),
  };
  static override runsLocally(flags: { stream?: boolean; 'images-dir'?: string }): string | undefined {
    return flags.stream || flags['images-dir'] === STDIO ? 'it writes the image to standard output' : undefined;
  }
  static override flags = {
    'images-dir': Flags.string({ char: 'D', helpValue: 'DIR', description: 'Directory to write the image to; it must not exist or be empty. - writes it to standard output, as --stream.' }),
    stream: Flags.boolean({
      description:
        'Write the image to standard output as one stream (a tar archive of the image directory, manifest last), for cr restore --stream at the other end of a pipe. It is put together under $TMPDIR first; with --kill, the process is killed only once the whole stream is written, and stays untouched if the reader goes away.',
      exclusive: ['images-dir', 'dry-run'],
    }),
    compress: Flags.option({
      options: COMPRESSIONS,
      helpValue: 'zstd|lz4',
      description: "Store memory and other blobs compressed: zstd (smaller) or lz4 (faster). Digests are of the data itself; restore reads the compression from the manifest. Makes an image of format 2, which a cr that reads only format 1 refuses.",
      exclusive: ['dry-run'],
    })(),
    ...selectionFlags,
    ...profileFlag,
    'ipc-ns': Flags.string({
      helpValue: 'TARGET',
      description: 'Checkpoint an IPC namespace instead of a process: a PID, an nsfs path (/proc/PID/ns/ipc or a pinned file), or "host".',
    }),
    'dry-run': Flags.boolean({ description: 'Collect and decide, print what would be saved and which rule decided; write nothing.' }),
    strict: Flags.boolean({ description: 'Fail, before anything is saved, when a selector (TYPE:ATTR=VALUE) matches no collected object, instead of warning.' }),
    tree: Flags.boolean({
      default: true,
      allowNo: true,
      description: 'Save the process with all its descendants, with their PIDs, parent links, sessions and process groups (the default); --no-tree saves the process alone and refuses one with children.',
      exclusive: ['ipc-ns'],
    }),
    'pre-copy': Flags.boolean({
      description: `Copy the memory while the process runs, tracking the pages it writes (userfaultfd write-protection in async mode: the process never waits), again and again until what it wrote meanwhile stops shrinking, then freeze it only to copy the rest. --pre-copy=N runs at most N rounds (default ${DEFAULT_PRE_COPY_ROUNDS}).`,
      exclusive: ['dry-run', 'ipc-ns'],
    }),
    parent: Flags.string({
      helpValue: 'IMG',
      description:
        'Write an incremental image: only the memory pages that differ from those in IMG, an earlier image of the same process (written without --compress); restore reads the rest from IMG (and its own parents), which must stay where it is.',
      exclusive: ['dry-run', 'ipc-ns'],
    }),
    'pre-copy-rounds': Flags.integer({ helpValue: 'N', min: 1, description: 'At most N rounds of --pre-copy (as --pre-copy=N).', dependsOn: ['pre-copy'] }),
    kill: Flags.boolean({ description: 'Kill the process once the image is committed (by default it carries on running); a process the policy leaves out is not killed.', exclusive: ['dry-run', 'ipc-ns'] }),
    'tcp-established': Flags.boolean({ description: TCP_ESTABLISHED_DESCRIPTION, exclusive: ['ipc-ns'] }),
  };

  async run(): Promise<unknown> {
    this.argv = this.argv.flatMap((arg) => {
      const rounds = /^--pre-copy=(.*)$/.exec(arg)?.[1];
      return rounds === undefined ? [arg] : ['--pre-copy', '--pre-copy-rounds', rounds];
    });
    const { args, flags } = await this.parse(Checkpoint);
    const target = targetOf(args.pid, flags['ipc-ns'], flags.tree);
    const toStdout = flags.stream || flags['images-dir'] === STDIO;
    if (!flags['dry-run'] && !flags['images-dir'] && !toStdout) throw new CrError('missing -D/--images-dir: say where to write the image, e.g. -D ./img, or --stream', ExitCode.Usage);
    if (toStdout && this.jsonEnabled()) throw new CrError('--json and --stream both want standard output; leave one out', ExitCode.Usage);
    const output = toStdout ? standardOutput() : undefined;
    await this.setUp(flags.config, { ...typeSelectionFlags(flags), ...tcpEstablishedLayer(flags['tcp-established']) }, flags.profile);
    const advice = this.adviceFor(target);
    const policy = policyFromConfig(this.resolved, this.registry, advice);
    const engine = this.container.resolve(CheckpointEngine);

    if (flags['dry-run']) {
      const { objects, warnings, refusals, phases } = await engine.plan(target, policy, flags.strict);
      if (!this.jsonEnabled()) this.log(decisionTable(objects));
      for (const warning of warnings) this.warn(warning);
      // Every refusal, not only the first a checkpoint would stop at; the exit status says there were some.
      if (refusals.length > 0) {
        if (!this.jsonEnabled()) process.stderr.write(`cr: a checkpoint would refuse ${refusals.length} object(s):\n${refusals.map((r) => `  ${r.key}: ${r.reason}\n`).join('')}`);
        process.exitCode = ExitCode.Unsupported;
      }
      return { target, objects, refusals, phases, ...(advice ? { advice } : {}) };
    }
    // A selector that matches nothing is found without freezing the target first; the checkpoint checks again what it froze.
    if (flags.strict) await engine.plan(target, policy, true);
    const spool = output ? StreamSpool.create((pid) => this.container.resolve(Kernel).procfs.isRunning(pid)) : undefined;
    const interrupts = abortOnSignals('checkpoint');
    let result;
    try {
      result = await engine.checkpoint({
        target,
        imageDir: spool?.imageDir ?? flags['images-dir']!,
        policy,
        kill: flags.kill,
        strict: flags.strict,
        signal: interrupts.signal,
        ...(advice ? { advice } : {}),
        ...(flags.compress ? { compression: flags.compress } : {}),
        ...(flags.parent ? { parent: flags.parent } : {}),
        ...(flags['pre-copy'] ? { preCopy: { rounds: flags['pre-copy-rounds'] ?? DEFAULT_PRE_COPY_ROUNDS } } : {}),
        ...(output ? { deliver: (dir: string) => writeImageStream(dir, output, interrupts.signal) } : {}),
      });
    } finally {
      interrupts.stop();
      spool?.remove();
    }
    if (!this.jsonEnabled()) {
      // With --stream, standard output holds the image.
      const log = output ? (line: string) => this.logToStderr(line) : (line: string) => this.log(line);
      const saved = result.objects.filter((o) => o.record);
      const frozen = result.frozenMs > 0 ? ` (frozen for ${result.frozenMs.toFixed(0)} ms${result.killed.length > 0 ? ', then killed' : ''})` : '';
      if (result.preCopy) log(`pre-copied while it ran, ${result.preCopy.rounds.length} round(s): ${result.preCopy.rounds.map((r) => `${r.copied} pages`).join(', ')}`);
      log(`checkpointed ${describeTarget(target)} into ${output ? 'standard output' : result.imageDir}${frozen}`);
      log(`saved ${saved.length} object(s): ${saved.map((o) => o.key).join(', ') || 'none'}`);
      const left = result.objects.filter((o) => !o.record);
      if (left.length > 0) log(`not saved: ${left.map((o) => `${o.key} (${o.policy.decision} by ${o.policy.rule})`).join(', ')}`);
      const references = result.objects.filter((o) => o.reference);
      if (references.length > 0) log(`external references, which restore must find: ${references.map((o) => o.key).join(', ')}`);
    }
    for (const warning of result.warnings) this.warn(warning);
    return result;
  }

  /** The advice a process target has been given (none for an IPC namespace); a file another user could have written is passed over with a warning. */
  private adviceFor(target: CheckpointTarget): AppliedAdvice | undefined {
    if (target.kind !== 'process') return undefined;
    const kernel = this.container.resolve(Kernel);
    kernel.procfs.assertUserProcess(target.pid);
    const { advice, warnings } = readAdvice(adviceDir(), kernel, target.pid);
    for (const w of warnings) this.warn(w);
    if (advice) assertSelections(this.registry, `advice ${advice.file}`, advice.advice, advice.advice.rules);
    return advice;
  }
}

function targetOf(pid: number | undefined, ipcNs: string | undefined, tree: boolean): CheckpointTarget {
  if (pid !== undefined && ipcNs !== undefined) {
    throw new CrError(`give a PID or --ipc-ns, not both: cr checkpoint ${pid} saves the process with its IPC namespace; --ipc-ns ${ipcNs} saves a namespace on its own`, ExitCode.Usage);
  }
  if (ipcNs !== undefined) {
    if (ipcNs === 'host') return { kind: 'ipc-ns', path: '/proc/1/ns/ipc' };
    if (/^[0-9]+$/.test(ipcNs)) return { kind: 'ipc-ns', path: `/proc/${ipcNs}/ns/ipc` };
    return { kind: 'ipc-ns', path: resolve(ipcNs) };
  }
  if (pid === undefined) throw new CrError('say what to checkpoint: a PID, or --ipc-ns TARGET', ExitCode.Usage);
  return { kind: 'process', pid, ...(tree ? {} : { tree: false }) };
}

function describeTarget(target: CheckpointTarget): string {
  return target.kind === 'process' ? `PID ${target.pid}` : `IPC namespace ${target.path}`;
}

export function decisionTable(objects: CollectedObjectEntry[]): string {
  return renderTable(
    ['OBJECT', 'TYPE', 'DECISION', 'RULE', 'SOURCE'],
    objects.map((o) => [o.key, o.type, o.policy.decision, o.policy.rule, o.policy.source]),
  );
}
