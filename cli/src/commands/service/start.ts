import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import * as Flags from '@oclif/core/flags';
import { CrError, ExitCode } from '@cr/core';
import { CrCommand } from '../../base-command.js';
import { DEFAULT_SERVICE_SOCKET, READY, READY_FD, serviceSocket, SERVICE_SOCKET_ENV } from '../../service/endpoint.cjs';

export default class ServiceStart extends CrCommand {
  static override summary = 'Start the cr service, which runs cr commands for their callers without their start-up.';
  static override description = `Starts a cr process that stays, with its code compiled and its plugins loaded, and listens on a unix socket (root's alone). From then on, root's checkpoint, restore, check, inspect, types, advise, unpin and config commands are handed to it and run there, each in its caller's place: the caller's stdio, working directory, umask, environment and cgroup, with the caller's Ctrl-C passed on. A command the service cannot run as its caller would (the caller in other namespaces, with fewer rights, a restore that waits, a stream on stdin or stdout, a config file that is a module or names plugins from outside) runs in the caller's own process, as it does without a service. Processes a restore creates are children of the service. Set ${SERVICE_SOCKET_ENV} to use another socket, CR_NO_SERVICE=1 to run a command without the service. See docs/service.md.`;
  static override examples = [
    { description: 'Start it; every command after this is run by it', command: '<%= config.bin %> service start' },
    { description: 'Start it with a log of each command it runs', command: '<%= config.bin %> service start --log-file /var/log/cr-service.log' },
  ];
  static override enableJsonFlag = true;
  static override flags = {
    socket: Flags.string({ helpValue: 'PATH', description: `Unix socket to listen on (its directory must be root's alone). Default: $${SERVICE_SOCKET_ENV}, or ${DEFAULT_SERVICE_SOCKET}.` }),
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(ServiceStart);
    if (process.geteuid?.() !== 0) throw new CrError('cr service start: the service runs as root, and only root may start it; run it as root', ExitCode.Usage);
    // Absolute: the service runs in /, not here.
    const socket = resolve(flags.socket ?? serviceSocket());
    const logFile = flags['log-file'] === undefined ? undefined : resolve(flags['log-file']);
    const daemon = join(this.config.root, 'dist', 'service', 'daemon.cjs');
    const child = spawn(process.execPath, [daemon, socket, ...(logFile ? [logFile] : [])], {
      detached: true,
      stdio: ['ignore', 'ignore', 'ignore', 'pipe'],
      cwd: '/',
    });
    const said = await new Promise<string>((done) => {
      let text = '';
      const channel = child.stdio[READY_FD]!;
      channel.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      channel.on('close', () => done(text.trim()));
    });
    if (said !== READY) {
      const code = child.exitCode ?? ((await once(child, 'exit')) as [number | null])[0];
      const exitCode = Object.values(ExitCode).find((c) => c === code) ?? ExitCode.Failure;
      throw new CrError(said.replace(/^cr: /, '') || `the cr service (PID ${child.pid}) exited before it listened on ${socket}; start it again with --log-file to see why`, exitCode);
    }
    child.unref();
    if (!this.jsonEnabled()) this.log(`cr service running as PID ${child.pid}, listening on ${socket}`);
    return { pid: child.pid, socket };
  }
}
