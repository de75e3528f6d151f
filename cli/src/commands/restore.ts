import * as Flags from '@oclif/core/flags';
import { CrError, ExitCode, Kernel } from '@cr/core';
import { ImageReader, RestoreEngine, adviceDir, readImageStream, writeAdvice } from '@cr/core/engine';
import { parseMapExternal, typedMapping } from '@cr/api';
import { STDIO, StreamSpool, standardInput } from '../image/stream.js';
import { abortOnSignals } from '../interrupts.js';
import { CrCommand, profileFlag, type CrConfigFlags } from '../base-command.js';

export default class Restore extends CrCommand {
  static override summary = 'Recreate the resources saved in an image: processes, namespaces, IPC objects.';
  static override description = `Reads and verifies the whole image first (digests, schemas, plugin versions), checks that every object can be recreated, then recreates them in dependency order. If any step fails, everything already recreated is removed again. A restored process has its saved PID and carries on where it was; cr waits for it to exit and exits with its status, unless --detach. Its stdio that pointed outside the checkpoint (a terminal, a pipe) is cr's own stdio, or the files named with --inherit-fd; a pipe above stdio whose other end was outside needs --inherit-fd. Namespaces restored without a process to live in must be pinned with --pin-ns, which bind-mounts them on DIR/uts, DIR/ipc … (release them with cr unpin). With --into-ipc-ns, IPC objects and processes go into that existing IPC namespace. Objects the image refers to without holding them (external references: a shared memory segment or queue checkpointed on its own) must exist where the restore goes, with the same id, key and size, or nothing is changed; --map-external names another live object to use instead where that is safe.`;
  static override examples = [
    { description: 'Restore a process and return once it runs', command: '<%= config.bin %> restore -D img --detach' },
    { description: 'Restore it in this terminal, waiting for it like a shell job', command: '<%= config.bin %> restore -D img' },
    { description: 'Restore what cr checkpoint --stream sends through a pipe', command: '<%= config.bin %> checkpoint 1234 --stream --kill | <%= config.bin %> restore --stream --detach' },
    { description: 'Give its stdout and stderr (a terminal at checkpoint time) to a file', command: '<%= config.bin %> restore -D img --detach --inherit-fd 1=out.log --inherit-fd 2=out.log' },
    { description: 'Restore the namespaces of an image and keep them on /run/cr/app', command: '<%= config.bin %> restore -D img --pin-ns /run/cr/app' },
    { description: 'Then use them', command: 'nsenter --uts=/run/cr/app/uts --ipc=/run/cr/app/ipc hostname' },
    { description: 'Restore IPC objects into a namespace that already exists', command: '<%= config.bin %> restore -D img --into-ipc-ns /proc/4321/ns/ipc' },
    { description: 'Restore a process into the IPC namespace that holds its (external) segment and queue', command: '<%= config.bin %> restore -D app-img --into-ipc-ns /run/cr/pins/ipc --detach' },
    { description: 'Attach the segment that was shm id 5 as the live segment 7 (same size)', command: '<%= config.bin %> restore -D app-img --detach --map-external sysvipc-shm:id=5=id=7' },
  ];
  static override enableJsonFlag = true;
  static override runsLocally(flags: { detach?: boolean; stream?: boolean; 'images-dir'?: string }): string | undefined {
    if (flags.stream || flags['images-dir'] === STDIO) return 'it reads the image from standard input';
    return flags.detach ? undefined : 'it waits for the processes it restores';
  }
  static override flags = {
    'images-dir': Flags.string({ char: 'D', helpValue: 'DIR', description: 'Image directory written by cr checkpoint. - reads the image from standard input, as --stream.' }),
    stream: Flags.boolean({
      description: 'Read the image from standard input, as cr checkpoint --stream writes it. It is unpacked under $TMPDIR and checked whole before anything is restored.',
      exclusive: ['images-dir'],
    }),
    'pin-ns': Flags.string({ helpValue: 'DIR', description: 'Directory to pin restored namespaces in (created if missing).' }),
    'into-ipc-ns': Flags.string({
      helpValue: 'PATH',
      description: 'Restore IPC objects, and put restored processes, into this existing IPC namespace (an nsfs path) instead of a new one.',
    }),
    detach: Flags.boolean({ char: 'd', description: 'Return once the restored processes run, instead of waiting for them to exit.' }),
    'inherit-fd': Flags.string({
      multiple: true,
      helpValue: 'N=PATH',
      description:
        'N=PATH: give the restored process PATH as fd N where it had stdio, or an end of a pipe, pointing outside the checkpoint (default for stdio: cr\'s own fd N); PATH may be /proc/PID/fd/M of the process holding the other end of the pipe.',
    }),
    'map-external': Flags.string({
      multiple: true,
      helpValue: 'SELECTOR=ATTR=VALUE',
      description:
        'TYPE:ATTR=VALUE=ATTR=VALUE: find the external reference selected by the first ATTR=VALUE as the live object selected by the second, e.g. sysvipc-shm:id=5=id=7 (refused unless safe: a segment of the same size; a queue or set with the same id).',
    }),
    ...profileFlag,
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(Restore);
    const pinFlag: CrConfigFlags = flags['pin-ns'] === undefined ? {} : { '--pin-ns': { restore: { pinNs: flags['pin-ns'] } } };
    await this.setUp(flags.config, pinFlag, flags.profile);
    const pinDir = this.resolved.config.restore?.pinNs;
    const kernel = this.container.resolve(Kernel);
    const inheritFds = parseInheritFds(flags['inherit-fd'] ?? [], Number(kernel.sysctl.read('fs.nr_open')));
    const mapExternal = (flags['map-external'] ?? []).map((text) => typedMapping(parseMapExternal(text), this.registry));
    const fromStdin = flags.stream || flags['images-dir'] === STDIO;
    if (!fromStdin && !flags['images-dir']) throw new CrError('missing -D/--images-dir: say which image to restore, e.g. -D ./img, or --stream', ExitCode.Usage);
    const input = fromStdin ? standardInput() : undefined;
    const spool = input ? StreamSpool.create((pid) => kernel.procfs.isRunning(pid)) : undefined;
    const imageDir = spool?.imageDir ?? flags['images-dir']!;
    const interrupts = abortOnSignals('restore');
    let result;
    let advice;
    try {
      if (input) await readImageStream(input, imageDir, interrupts.signal);
      result = await this.container.resolve(RestoreEngine).restore({
        imageDir,
        mapExternal,
        signal: interrupts.signal,
        options: {
          ...(pinDir ? { pinDir } : {}),
          ...(flags['into-ipc-ns'] ? { into: { ipc: flags['into-ipc-ns'] } } : {}),
          ...(Object.keys(inheritFds).length > 0 ? { inheritFds } : {}),
        },
      });
      advice = this.carryAdviceOver(imageDir, pids(result.restored), kernel);
    } finally {
      interrupts.stop();
      spool?.remove();
    }
    const { restored, phases } = result;
    const restoredPids = pids(restored);
    const waiting = !flags.detach && restoredPids.length > 0;
    if (!this.jsonEnabled()) {
      // While cr waits, its stdout may be the restored program's too: keep cr's lines apart.
      const say = (line: string) => (waiting ? this.logToStderr(line) : this.log(line));
      say(`restored ${restored.length} object(s) from ${input ? 'standard input' : imageDir}`);
      for (const r of restored) say(`  ${r.key}${r.pinnedAt ? ` pinned at ${r.pinnedAt}` : ''}${r.pid === undefined ? '' : ` running as PID ${r.pid}`}`);
      if (advice) say(`  its advice is kept in ${advice}`);
    }
    if (!waiting) return { restored, phases, ...(advice ? { advice } : {}) };
    let status = 0;
    for (const pid of restoredPids) {
      this.logger.debug({ pid }, `waiting for PID ${pid} to exit`);
      status = kernel.waitForExit(pid);
      this.logger.debug({ pid, status }, `PID ${pid} exited with status ${status}`);
    }
    // cr exits with the program's status, so the JSON result is printed here, once the program is done.
    if (this.jsonEnabled()) this.logJson(this.toSuccessJson({ restored, phases, ...(advice ? { advice } : {}), status }));
    this.exit(status);
  }

  /**
   * The advice the process had given when it was checkpointed is given again for the restored
   * one: to the kernel it is a new process (another start time), but it is the same program,
   * which will not advise again. Best effort: the restore has succeeded whatever happens here.
   */
  private carryAdviceOver(imageDir: string, pids: readonly number[], kernel: Kernel): string | undefined {
    const { advice, target } = ImageReader.open(imageDir).manifest;
    if (!advice || target.kind !== 'process' || !pids.includes(target.pid)) return undefined;
    try {
      return writeAdvice(adviceDir(), kernel, target.pid, advice.advice);
    } catch (err) {
      this.warn(`the advice of PID ${target.pid} was not kept for the restored process: ${(err as Error).message}`);
      return undefined;
    }
  }
}

function pids(restored: readonly { pid?: number }[]): number[] {
  return restored.flatMap((r) => (r.pid === undefined ? [] : [r.pid]));
}

/**
 * "1=out.log" → {1: "out.log"}; repeated flags add up. N must be a descriptor number a process
 * can have: below `nrOpen`, the kernel's fs.nr_open.
 */
export function parseInheritFds(values: readonly string[], nrOpen: number): Record<number, string> {
  const fds: Record<number, string> = {};
  for (const value of values) {
    const m = /^(\d+)=(.+)$/.exec(value);
    if (!m) throw new CrError(`--inherit-fd ${value}: expected N=PATH, e.g. --inherit-fd 1=out.log`, ExitCode.Usage);
    const fd = Number(m[1]);
    if (fd >= nrOpen) throw new CrError(`--inherit-fd ${value}: ${m[1]} is not a descriptor number a process can have on this kernel (0 to ${nrOpen - 1}, fs.nr_open)`, ExitCode.Usage);
    if (fds[fd] !== undefined) throw new CrError(`--inherit-fd ${value}: fd ${fd} is already given as ${fds[fd]}`, ExitCode.Usage);
    fds[fd] = m[2]!;
  }
  return fds;
}
