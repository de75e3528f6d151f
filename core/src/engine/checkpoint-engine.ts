import { arch, hostname, release } from 'node:os';
import { IMAGE_FORMAT_VERSION, type CheckpointTarget, type ObjectEntry } from '@cr/schemas';
import { inject, injectable } from 'tsyringe';
import { PluginError } from '../errors.js';
import { ResourceGraph } from '../graph/resource-graph.js';
import { ImageWriter } from '../image/image-writer.js';
import { blobPath, recordPath } from '../image/layout.js';
import { Kernel } from '../kernel/kernel.js';
import type { ResourceNode, SaveContext } from '../plugin/contract.js';
import { PluginRegistry } from '../plugin/registry.js';
import type { Policy } from '../policy/policy.js';
import { describeZodError } from '../zod-issues.js';
import { rootOf } from './targets.js';
import { CR_VERSION } from './version.js';

export interface CheckpointRequest {
  target: CheckpointTarget;
  imageDir: string;
  policy: Policy;
}

export type CollectedObjectEntry = Omit<ObjectEntry, 'record' | 'blobs'>;

export interface CheckpointResult {
  imageDir: string;
  objects: ObjectEntry[];
}

/**
 * checkpoint = check target → collect → apply policy → save in dependency order → commit.
 * Any failure removes the partial image; the target is only read, never changed.
 */
@injectable()
export class CheckpointEngine {
  constructor(
    @inject(PluginRegistry) private readonly registry: PluginRegistry,
    @inject(Kernel) private readonly kernel: Kernel,
  ) {}

  /** Collects and decides without saving anything (what `--dry-run` shows). */
  async plan(target: CheckpointTarget, policy: Policy): Promise<CollectedObjectEntry[]> {
    const graph = await this.collect(target);
    try {
      return graph.all().filter((n) => !n.type.startsWith('target:')).map((n) => this.entryOf(n, policy));
    } finally {
      graph.release();
    }
  }

  async checkpoint(request: CheckpointRequest): Promise<CheckpointResult> {
    const { target, policy } = request;
    const graph = await this.collect(target);
    let writer: ImageWriter | undefined;
    try {
      writer = ImageWriter.create(request.imageDir);
      const objects: ObjectEntry[] = [];
      for (const type of this.registry.orderedTypes()) {
        for (const node of graph.ofType(type)) {
          const entry: ObjectEntry = this.entryOf(node, policy);
          if (entry.policy.decision === 'include') await this.save(node, entry, writer, target);
          objects.push(entry);
        }
      }
      writer.commit({
        format: 'cr-image',
        formatVersion: IMAGE_FORMAT_VERSION,
        tool: { name: 'cr', version: CR_VERSION },
        createdAt: new Date().toISOString(),
        host: { kernelRelease: release(), arch: arch(), hostname: hostname() },
        target,
        plugins: this.registry.all().map(({ plugin, source }) => ({ type: plugin.type, version: plugin.version, package: source })),
        objects,
      });
      return { imageDir: writer.imageDir, objects };
    } catch (err) {
      writer?.abort();
      throw err;
    } finally {
      graph.release();
    }
  }

  private entryOf(node: ResourceNode, policy: Policy): ObjectEntry {
    return {
      key: node.key,
      type: node.type,
      id: node.id,
      parents: [...node.parents],
      attributes: { ...node.attributes },
      policy: policy.decide(node.type, node.attributes),
    };
  }

  /**
   * Every type is collected, excluded ones too, so that the manifest and a dry run list every
   * object with the rule that decided it. Plugins report unsupported objects in save, not here.
   */
  private async collect(target: CheckpointTarget): Promise<ResourceGraph> {
    const graph = new ResourceGraph();
    const root = rootOf(target, this.kernel);
    graph.add(root.type, root.id, root.handle, {}, undefined);
    try {
      for (const type of this.registry.orderedTypes()) {
        const { plugin, source } = this.registry.get(type);
        for (const parentType of plugin.collectsFrom) {
          for (const parent of graph.ofType(parentType)) {
            const found = await plugin.collect(parent, { target });
            for (const obj of found) {
              if (typeof obj.id !== 'string' || obj.id === '') {
                throw new PluginError(`plugin ${source} (type ${type}) collected an object without a string id below ${parent.key}`);
              }
              graph.add(type, obj.id, obj.handle, obj.attributes ?? {}, parent.key, obj.release);
            }
          }
        }
      }
    } catch (err) {
      graph.release();
      throw err;
    }
    return graph;
  }

  private async save(node: ResourceNode, entry: ObjectEntry, writer: ImageWriter, target: CheckpointTarget): Promise<void> {
    const { plugin, source } = this.registry.get(node.type);
    const blobs: Record<string, string> = {};
    const ctx: SaveContext = {
      target,
      writeBlob: async (name, data) => {
        if (blobs[name]) throw new PluginError(`plugin ${source} wrote blob "${name}" of ${node.key} twice`);
        blobs[name] = blobPath(node.type, node.id, name);
        await writer.writeStream(blobs[name], data);
      },
    };
    const record = await plugin.save(node, ctx);
    const checked = plugin.recordSchema.safeParse(record);
    if (!checked.success) {
      throw new PluginError(`plugin ${source} produced an invalid record for ${node.key}:\n  ${describeZodError(checked.error, record).join('\n  ')}`);
    }
    entry.record = recordPath(node.type, node.id);
    if (Object.keys(blobs).length > 0) entry.blobs = blobs;
    writer.writeFile(entry.record, `${JSON.stringify({ type: node.type, id: node.id, version: plugin.version, record: checked.data }, null, 2)}\n`);
  }
}
