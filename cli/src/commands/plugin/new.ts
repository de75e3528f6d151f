import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { scaffoldPlugin } from '@cr/plugin-kit';
import { CrCommand } from '../../base-command.js';

export default class PluginNew extends CrCommand {
  static override summary = 'Write a new plugin package to start from: a working example resource type, its schemas and a test.';
  static override description = `Creates DIR with package.json, tsconfig.json, src/index.ts (an example resource type: the core dump filter of each process, which the built-in plugins do not save), src/record.ts (its record and options schemas, in zod), test/plugin.test.ts (checkpoints and restores a real process with the plugin loaded, through @cr/plugin-kit's harness) and a README. The package is named after DIR and the type after the package, without a cr-plugin- prefix. From a cr checkout, the cr packages are linked from it (file: paths). Then: cd DIR && npm install && npm test (as root), and list the built module in a config's plugins (docs/plugins.md).`;
  static override examples = [
    { description: 'Start the package cr-plugin-coredump-filter, owning type coredump-filter', command: '<%= config.bin %> plugin new cr-plugin-coredump-filter' },
    { description: 'Choose the type name', command: '<%= config.bin %> plugin new ./my-plugin --type my-resource' },
  ];
  static override enableJsonFlag = true;
  static override args = {
    dir: Args.string({ description: 'Directory to create (it must not exist or be empty); its name is the package name.', required: true }),
  };
  static override flags = {
    name: Flags.string({ helpValue: 'NAME', description: 'npm package name, instead of the directory name.' }),
    type: Flags.string({ helpValue: 'TYPE', description: 'Resource type the plugin owns, instead of the package name without cr-plugin-.' }),
  };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(PluginNew);
    const made = scaffoldPlugin({ dir: args.dir, ...(flags.name ? { name: flags.name } : {}), ...(flags.type ? { type: flags.type } : {}) });
    if (!this.jsonEnabled()) {
      this.log(`created ${made.name} in ${made.dir}: resource type ${made.type}`);
      for (const file of made.files) this.log(`  ${file}`);
      this.log(`next: cd ${args.dir} && npm install && npm test`);
    }
    return made;
  }
}
