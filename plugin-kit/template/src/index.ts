import { Kernel, PLUGIN_API_VERSION, inject, injectable, type CollectedObject, type ResourceNode, type ResourcePlugin, type RestoreContext } from '@cr/core';
import { TASKS } from '@cr/plugin-tasks';
import { optionsSchema, recordSchema, type __CLASS__Options, type __CLASS__Record } from './record.js';

/**
 * An example resource type to start from: the core dump filter of every checkpointed process
 * (/proc/PID/coredump_filter), which the built-in plugins do not save. One object below each
 * process (`tasks`), saved while the process is frozen, and written back into the restored
 * process before it runs. docs/plugins.md of cr explains every member.
 */
@injectable()
export class __CLASS__ implements ResourcePlugin<__CLASS__Record, number, void, __CLASS__Options> {
  readonly apiVersion = PLUGIN_API_VERSION;
  readonly type = '__TYPE__';
  readonly version = 1;
  readonly description = '__DESCRIPTION__';
  readonly collectsFrom = [TASKS.type];
  // Users can write `--exclude __TYPE__:pid=1234`.
  readonly selectableBy = { pid: 'uint' } as const;
  readonly recordSchema = recordSchema;
  readonly optionsSchema = optionsSchema;

  constructor(@inject(Kernel) private readonly kernel: Kernel) {}

  collect(parent: ResourceNode): CollectedObject<number>[] {
    const { pid } = TASKS.handleOf(parent);
    return [{ id: String(pid), handle: pid, attributes: { pid } }];
  }

  save(node: ResourceNode<number>): __CLASS__Record {
    // The kernel shows the mask in hex: "00000033".
    return { filter: parseInt(this.kernel.procfs.read(node.handle, 'coredump_filter'), 16) };
  }

  restore(record: __CLASS__Record, ctx: RestoreContext<__CLASS__Options>): void {
    // The process restored from the parent `tasks` object: created, stopped, not yet running.
    const task = TASKS.restoredParent(ctx);
    if (!task) return; // the process itself was not saved: there is nothing to write into
    const filter = ctx.pluginOptions.override ?? record.filter;
    this.kernel.procfs.write(task.pid, 'coredump_filter', `0x${filter.toString(16)}`);
  }
}

export default __CLASS__;
