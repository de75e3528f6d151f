import { Flags } from '@oclif/core';
import { RestoreEngine } from '@cr/core';
import { CrCommand, type CrConfigFlags } from '../base-command.js';

export default class Restore extends CrCommand {
  static override summary = 'Recreate the resources saved in an image.';
  static override description = `Reads and verifies the whole image first (digests, schemas, plugin versions), checks that every
object can be recreated, then recreates them in dependency order. If any step fails, everything
already recreated is removed again. Namespaces restored without a process to live in must be
pinned with --pin-ns, which bind-mounts them on DIR/uts, DIR/ipc … (release them with cr unpin).`;
  static override examples = [
    { description: 'Restore the namespaces of an image and keep them on /run/cr/app', command: '<%= config.bin %> restore -D img --pin-ns /run/cr/app' },
    { description: 'Then use them', command: 'nsenter --uts=/run/cr/app/uts --ipc=/run/cr/app/ipc hostname' },
    { description: 'Restore IPC objects into a namespace that already exists', command: '<%= config.bin %> restore -D img --into-ipc-ns /proc/4321/ns/ipc' },
  ];
  static override enableJsonFlag = true;
  static override flags = {
    'images-dir': Flags.string({ char: 'D', description: 'Image directory written by cr checkpoint.', required: true }),
    'pin-ns': Flags.string({ description: 'Directory to pin restored namespaces in (created if missing).' }),
    'into-ipc-ns': Flags.string({ description: 'Restore into this existing IPC namespace (an nsfs path) instead of a new one.' }),
  };

  async run(): Promise<unknown> {
    const { flags } = await this.parse(Restore);
    const pinFlag: CrConfigFlags = flags['pin-ns'] === undefined ? {} : { '--pin-ns': { restore: { pinNs: flags['pin-ns'] } } };
    await this.setUp(flags.config, pinFlag);
    const pinDir = this.resolved.config.restore?.pinNs;
    const restored = await this.container.resolve(RestoreEngine).restore({
      imageDir: flags['images-dir'],
      options: { ...(pinDir ? { pinDir } : {}), ...(flags['into-ipc-ns'] ? { into: { ipc: flags['into-ipc-ns'] } } : {}) },
    });
    if (!this.jsonEnabled()) {
      this.log(`restored ${restored.length} object(s) from ${flags['images-dir']}`);
      for (const r of restored) this.log(`  ${r.key}${r.pinnedAt ? ` pinned at ${r.pinnedAt}` : ''}`);
    }
    return { restored };
  }
}
