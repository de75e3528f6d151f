import * as Flags from '@oclif/core/flags';
import { CrError, ExitCode, Kernel } from '@cr/core';
import { CrCommand } from '../../base-command.js';
import { askService, serviceStatus } from '../../service/ask.js';
import { serviceSocket } from '../../service/endpoint.cjs';

export default class ServiceStop extends CrCommand {
  static override summary = 'Stop the cr service once the command it runs, if any, is over.';
  static override description = 'Asks the service to take no more commands and to exit once the one it runs is done; returns when it has exited. Processes it restored carry on (their parent becomes init). Commands after this run in their own process again.';
  static override examples = ['<%= config.bin %> service stop'];
  static override enableJsonFlag = true;
  static override flags = {
    socket: Flags.string({ helpValue: 'PATH', description: 'Socket of the service to stop. Default: as cr service start.' }),
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(ServiceStop);
    const socket = flags.socket ?? serviceSocket();
    const status = await serviceStatus(socket);
    if (!status) throw new CrError(`no cr service answers at ${socket}; cr service status tells whether one runs`, ExitCode.Target);
    await askService(socket, { type: 'stop' });
    const kernel = new Kernel();
    // The service exits once its command is done: however long that takes, it was asked to.
    while (kernel.procfs.isRunning(status.pid)) await new Promise((resolve) => setTimeout(resolve, 20));
    if (!this.jsonEnabled()) this.log(`cr service (PID ${status.pid}) stopped`);
    return { pid: status.pid, socket };
  }
}
