import * as Flags from '@oclif/core/flags';
import { CrCommand, TCP_ESTABLISHED_DESCRIPTION, profileFlag, selectionFlags, tcpEstablishedLayer, typeSelectionFlags, type CrConfigFlags } from '../base-command.js';
import { renderTable } from '../table.js';

export default class Config extends CrCommand {
  static override summary = 'Print the resolved configuration and where each value came from.';
  static override description = `Values come from, in increasing precedence: cr's defaults, the config file (.crrc, .crrc.json, .crrc.yaml, cr.config.js/.ts, package.json#cr, found from the current directory upwards, or --config), the file's profile named by --profile, and flags. Give the same flags as to checkpoint or restore to see their effect.`;
  static override examples = ['<%= config.bin %> config', '<%= config.bin %> config --exclude ipc-ns --json', '<%= config.bin %> config --profile nosysv'];
  static override enableJsonFlag = true;
  static override flags = {
    ...selectionFlags,
    ...profileFlag,
    'pin-ns': Flags.string({ helpValue: 'DIR', description: 'As for cr restore.' }),
    'tcp-established': Flags.boolean({ description: `As for cr checkpoint: ${TCP_ESTABLISHED_DESCRIPTION}` }),
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(Config);
    const layers: CrConfigFlags = {
      ...typeSelectionFlags(flags),
      ...tcpEstablishedLayer(flags['tcp-established']),
      ...(flags['pin-ns'] === undefined ? {} : { '--pin-ns': { restore: { pinNs: flags['pin-ns'] } } }),
    };
    await this.setUp(flags.config, layers, flags.profile);
    const { config, sources } = this.resolved;
    if (!this.jsonEnabled()) {
      this.log(`config file: ${this.configFile ?? 'none found'}`);
      this.log(renderTable(['KEY', 'VALUE', 'SOURCE'], Object.entries(sources).map(([key, source]) => [key, JSON.stringify(valueAt(config, key)), source])));
    }
    return { file: this.configFile ?? null, config, sources };
  }
}

function valueAt(config: object, path: string): unknown {
  return path.split('.').reduce<unknown>((v, k) => (v as Record<string, unknown> | undefined)?.[k], config);
}
