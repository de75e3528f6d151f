import * as Flags from '@oclif/core/flags';
import { CrError, ExitCode } from '@cr/core';
import { CrCommand } from '../../base-command.js';
import { serviceStatus } from '../../service/ask.js';
import { buildIdentity, serviceSocket } from '../../service/endpoint.cjs';

export default class ServiceStatus extends CrCommand {
  static override summary = 'Tell whether a cr service runs, and whether it runs this build of cr.';
  static override description = `Exits 0 when a service answers on the socket, ${ExitCode.Target} when none does. A service of another build (cr was upgraded since it started) hands every command back to its caller: stop it and start it again.`;
  static override examples = ['<%= config.bin %> service status'];
  static override enableJsonFlag = true;
  static override flags = {
    socket: Flags.string({ helpValue: 'PATH', description: 'Socket of the service. Default: as cr service start.' }),
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(ServiceStatus);
    const socket = flags.socket ?? serviceSocket();
    const status = await serviceStatus(socket);
    if (!status) throw new CrError(`no cr service answers at ${socket}; start one with cr service start`, ExitCode.Target);
    const current = status.build === buildIdentity(this.config.root);
    if (!this.jsonEnabled()) {
      this.log(`cr service running as PID ${status.pid} on ${socket} since ${status.since}, ${status.served} command(s) run`);
      if (!current) this.log('it runs another build of cr than this one, and hands every command back: restart it (cr service stop, cr service start)');
    }
    return { pid: status.pid, socket, since: status.since, served: status.served, currentBuild: current };
  }
}
