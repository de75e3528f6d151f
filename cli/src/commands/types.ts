import { CrCommand } from '../base-command.js';
import { renderTable } from '../table.js';

export default class Types extends CrCommand {
  static override summary = 'List the installed resource types and the plugins that provide them.';
  static override description = 'Built-in plugins and those named in the config file\'s "plugins" key, in the order cr saves and restores them.';
  static override examples = ['<%= config.bin %> types', '<%= config.bin %> types --json'];
  // `cr plugins` was this command's name; in oclif CLIs it manages the CLI's own plugins. It still works, with a warning.
  static override hiddenAliases = ['plugins'];
  static override deprecateAliases = true;
  static override enableJsonFlag = true;

  async run(): Promise<unknown> {
    const { flags } = await this.parse(Types);
    await this.setUp(flags.config);
    const plugins = this.registry.all().map(({ plugin, source }) => ({
      type: plugin.type,
      version: plugin.version,
      package: source,
      collectsFrom: [...plugin.collectsFrom],
      dependsOn: [...(plugin.dependsOn ?? [])],
      selectableBy: this.registry.selectableBy(plugin.type),
      description: plugin.description,
    }));
    if (!this.jsonEnabled()) {
      this.log(renderTable(['TYPE', 'VERSION', 'PACKAGE', 'BELOW', 'DESCRIPTION'], plugins.map((p) => [p.type, p.version, p.package, p.collectsFrom.join(','), p.description])));
    }
    return { plugins };
  }
}
