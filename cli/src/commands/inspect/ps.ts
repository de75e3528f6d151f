import type { TasksRecord } from '@cr/plugin-tasks';
import { CrCommand } from '../../base-command.js';
import { imageDirArg } from '../../image/image-arg.js';
import { readSoundImage, savedOfType } from '../../image/read-image.js';
import { processTree, type ProcessNode } from '../../image/process-tree.js';
import { renderTable } from '../../table.js';

export default class InspectPs extends CrCommand {
  static override summary = 'Show the saved processes as a tree.';
  static override description =
    "Lays the image's processes (their tasks records) out as a tree by their parent PID at checkpoint time; a process whose parent was not saved is a root. Each shows its PID, parent PID, effective uid and command name.";
  static override examples = ['<%= config.bin %> inspect ps img', '<%= config.bin %> inspect ps img --json'];
  static override enableJsonFlag = true;
  static override args = imageDirArg;

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(InspectPs);
    await this.setUp(flags.config);
    const roots = processTree(savedOfType<TasksRecord>(readSoundImage(args.dir, this.registry), 'tasks').map(({ record }) => record));
    if (!this.jsonEnabled()) {
      const rows: string[][] = [];
      const walk = (node: ProcessNode, depth: number) => {
        rows.push([String(node.pid), String(node.ppid), node.uid === undefined ? '-' : String(node.uid), `${depth > 0 ? `${'  '.repeat(depth - 1)}\\_ ` : ''}${node.comm}`]);
        for (const child of node.children) walk(child, depth + 1);
      };
      for (const root of roots) walk(root, 0);
      this.log(rows.length > 0 ? renderTable(['PID', 'PPID', 'UID', 'COMMAND'], rows) : 'no process is saved in this image');
    }
    return { processes: roots };
  }
}
