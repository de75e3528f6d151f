import type { FilesRecord } from '@cr/plugin-files';
import type { MmRecord } from '@cr/plugin-mm';
import { isZombieRecord, type TasksRecord } from '@cr/plugin-tasks';
import { CrCommand } from '../../base-command.js';
import { imageDirArg } from '../../image/image-arg.js';
import { readSoundImage, savedOfType } from '../../image/read-image.js';
import { renderTable } from '../../table.js';

/** One row of a process's files: its working directory, executable, or a descriptor. */
interface FdRow {
  pid: number;
  fd: number | 'cwd' | 'exe';
  kind: string;
  target: string;
  access: string;
  offset?: string;
  /** The policy decision: "include", or why the descriptor is not in the image. */
  decision: string;
}

const O_ACCMODE = 0o3;
const O_APPEND = 0o2000;

export default class InspectFds extends CrCommand {
  static override summary = "Show each saved process's open files.";
  static override description =
    'For every saved process: its working directory, its executable, and each file descriptor with its kind (file, directory, device, deleted, duplicate, inherited stdio), what it refers to, its access mode and offset, and the policy decision (a descriptor left out is listed with the decision that left it out).';
  static override examples = ['<%= config.bin %> inspect fds img', '<%= config.bin %> inspect fds img --json'];
  static override enableJsonFlag = true;
  static override args = imageDirArg;

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(InspectFds);
    await this.setUp(flags.config);
    const image = readSoundImage(args.dir, this.registry);
    const exes = new Map(savedOfType<MmRecord>(image, 'mm').map(({ entry, record }) => [entry.id, record.exe.path]));
    const rows: FdRow[] = [];
    for (const { entry: task, record } of savedOfType<TasksRecord>(image, 'tasks')) {
      const pid = record.pid;
      if (isZombieRecord(record)) continue;
      rows.push({ pid, fd: 'cwd', kind: 'directory', target: record.cwd, access: '', decision: 'include' });
      const exe = exes.get(task.id);
      if (exe) rows.push({ pid, fd: 'exe', kind: 'file', target: exe, access: '', decision: 'include' });
      const fds = image.manifest.objects.filter((o) => o.type === 'files' && o.parents.includes(task.key));
      for (const entry of fds.sort((a, b) => Number(a.attributes.fd) - Number(b.attributes.fd))) {
        const saved = image.records[entry.key] as FilesRecord | undefined;
        rows.push(saved ? { pid, decision: entry.policy.decision, ...describeFd(saved) } : { pid, fd: Number(entry.attributes.fd), kind: '', target: String(entry.attributes.path ?? ''), access: '', decision: `${entry.policy.decision} (${entry.policy.rule})` });
      }
    }
    if (!this.jsonEnabled()) {
      this.log(renderTable(['PID', 'FD', 'KIND', 'TARGET', 'ACCESS', 'OFFSET', 'DECISION'], rows.map((r) => [r.pid, r.fd, r.kind, r.target, r.access, r.offset ?? '', r.decision])));
    }
    return { files: rows };
  }
}

function describeFd(record: FilesRecord): Omit<FdRow, 'pid' | 'decision'> {
  const fd = record.fd;
  switch (record.kind) {
    case 'duplicate':
      return { fd, kind: 'duplicate', target: `fd ${record.of}`, access: '' };
    case 'inherited':
      return { fd, kind: 'inherited', target: record.description, access: accessOf(record.flags) };
    default:
      return { fd, kind: record.kind, target: record.path, access: accessOf(record.flags), offset: record.offset };
  }
}

function accessOf(flags: number): string {
  const mode = ['r', 'w', 'rw', '?'][flags & O_ACCMODE]!;
  return flags & O_APPEND ? `${mode},append` : mode;
}
