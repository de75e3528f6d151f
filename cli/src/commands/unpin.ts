import { rmdirSync } from 'node:fs';
import { resolve } from 'node:path';
import * as Args from '@oclif/core/args';
import { CrError, ExitCode, Kernel } from '@cr/core';
import { pinnedNamespacePaths } from '@cr/core/engine';
import { CrCommand } from '../base-command.js';

export default class Unpin extends CrCommand {
  static override summary = 'Release namespaces pinned by cr restore --pin-ns.';
  static override description = 'Unmounts every namespace pinned directly inside DIR, removes the pin files, and removes DIR if it is then empty. A namespace still used by a process lives on.';
  static override examples = ['<%= config.bin %> unpin /run/cr/app'];
  static override enableJsonFlag = true;
  static override args = { dir: Args.directory({ description: 'Directory given to --pin-ns.', required: true, exists: true }) };

  async run(): Promise<unknown> {
    const { args } = await this.parse(Unpin);
    const dir = resolve(args.dir);
    const pins = pinnedNamespacePaths(dir);
    if (pins.length === 0) throw new CrError(`nothing is pinned in ${dir}`, ExitCode.Target);
    const kernel = new Kernel();
    for (const path of pins) kernel.namespaces.unpin(path);
    let removed = true;
    try {
      rmdirSync(dir);
    } catch {
      removed = false;
    }
    if (!this.jsonEnabled()) {
      for (const path of pins) this.log(`unpinned ${path}`);
      if (removed) this.log(`removed ${dir}`);
    }
    return { unpinned: pins, removedDir: removed };
  }
}
