import { arch, hostname, release } from 'node:os';
import { IMAGE_FORMAT_VERSION, type CheckpointTarget, type ObjectEntry } from '@cr/schemas';
import { inject, injectable } from 'tsyringe';
import { CollectAgainError, CrError, ExitCode, PluginError, TargetError } from '../errors.js';
import { ResourceGraph } from '../graph/resource-graph.js';
import { ImageWriter } from '../image/image-writer.js';
import { blobPath, recordPath } from '../image/layout.js';
import { Kernel } from '../kernel/kernel.js';
import type { ResourceNode, SaveContext } from '../plugin/contract.js';
import { PluginRegistry } from '../plugin/registry.js';
import type { AppliedAdvice } from '../policy/from-config.js';
import { describeSelection, type Policy } from '../policy/policy.js';
import { untypedAttributes } from '../policy/selector-types.js';
import { describeZodError } from '../zod-issues.js';
import { claimOwners, ownedElsewhere, refuseUnowned, type Owners } from './claims.js';
import { refuseUnmetRequirements } from './requirements.js';
import { rootOf } from './targets.js';
import { CR_VERSION } from './version.js';

export interface CheckpointRequest {
  target: CheckpointTarget;
  imageDir: string;
  policy: Policy;
  /** Stop the frozen objects (kill the process) once the image is committed (`--kill`). */
  kill?: boolean;
  /** The process's advice that `policy` applies, recorded in the manifest for `cr inspect`. */
  advice?: AppliedAdvice;
  /** Aborts the checkpoint (Ctrl-C): the targets are let go and nothing is written. */
  signal?: AbortSignal;
  /** A selector that matches no collected object fails the checkpoint before anything is saved (`--strict`). */
  strict?: boolean;
}

/** What a dry run found: every object with its decision, and what the user should hear of. */
export interface CheckpointPlan {
  objects: CollectedObjectEntry[];
  /** One line each: a selector that matched no collected object. */
  warnings: string[];
}

export type CollectedObjectEntry = Omit<ObjectEntry, 'record' | 'blobs'>;

export interface CheckpointResult {
  imageDir: string;
  objects: ObjectEntry[];
  /** How long the target was frozen, in milliseconds: from the first freeze until it ran again, or until --kill began. */
  frozenMs: number;
  /** Keys of the objects `--kill` ended (only objects the image holds are). */
  killed: string[];
  /** One line each: a selector that matched no collected object. */
  warnings: string[];
}

/** How often collect and freeze start again when a freeze finds that what was collected changed meanwhile. */
const COLLECT_TRIES = 10;

interface Collected {
  graph: ResourceGraph;
  /** Frozen nodes, in the order they were frozen. */
  frozen: ResourceNode[];
  frozenAt: number;
  owners: Owners;
}

/**
 * checkpoint = check target → collect, freezing each object whose plugin can, before the objects
 * below it are collected → apply policy → save in dependency order → commit → thaw (or kill).
 * Any failure removes the partial image and thaws what was frozen, so the target carries on as
 * if nothing happened.
 */
@injectable()
export class CheckpointEngine {
  constructor(
    @inject(PluginRegistry) private readonly registry: PluginRegistry,
    @inject(Kernel) private readonly kernel: Kernel,
  ) {}

  /** Collects and decides without saving anything (what `--dry-run` shows). */
  async plan(target: CheckpointTarget, policy: Policy, strict = false): Promise<CheckpointPlan> {
    const { graph, owners } = await this.collect(target, false);
    try {
      const objects = this.decideAll(graph, policy, owners);
      const decided = new Map(objects.map((e) => [e.key, e]));
      refuseUnowned(graph, decided, owners);
      refuseUnmetRequirements(graph, decided);
      return { objects, warnings: this.unmatchedSelectors(policy, objects, strict) };
    } finally {
      graph.release();
    }
  }

  async checkpoint(request: CheckpointRequest): Promise<CheckpointResult> {
    const { target, policy, signal } = request;
    // The image path is checked and the partial directory made before anything is frozen.
    const writer = ImageWriter.create(request.imageDir, signal);
    let collected: Collected;
    try {
      collected = await this.collect(target, true, signal);
    } catch (err) {
      writer.abort();
      throw err;
    }
    const { graph, frozen, frozenAt, owners } = collected;
    const objects: ObjectEntry[] = [];
    let warnings: string[];
    try {
      const entries = this.decideAll(graph, policy, owners);
      const decided = new Map(entries.map((e) => [e.key, e]));
      refuseUnowned(graph, decided, owners);
      refuseUnmetRequirements(graph, decided);
      warnings = this.unmatchedSelectors(policy, entries, request.strict ?? false);
      for (const type of this.registry.orderedTypes()) {
        for (const node of graph.ofType(type)) {
          const entry: ObjectEntry = decided.get(node.key)!;
          signal?.throwIfAborted();
          if (entry.policy.decision === 'include') await this.save(node, entry, writer, target);
          objects.push(entry);
        }
      }
      signal?.throwIfAborted();
      writer.commit({
        format: 'cr-image',
        formatVersion: IMAGE_FORMAT_VERSION,
        tool: { name: 'cr', version: CR_VERSION },
        createdAt: new Date().toISOString(),
        host: { kernelRelease: release(), arch: arch(), hostname: hostname() },
        target,
        plugins: this.registry.all().map(({ plugin, source }) => ({ type: plugin.type, version: plugin.version, package: source })),
        objects,
        ...(request.advice ? { advice: request.advice } : {}),
      });
    } catch (err) {
      writer.abort();
      await this.thawAfterFailure(frozen, err);
      graph.release();
      throw err;
    }
    // --kill ends only what the image holds: a process left out by policy carries on.
    const saved = new Set(objects.filter((o) => o.record).map((o) => o.key));
    const killed = request.kill ? frozen.filter((n) => saved.has(n.key)).map((n) => n.key) : [];
    const thawStart = performance.now();
    try {
      await this.thaw(frozen, (node) => killed.includes(node.key));
    } finally {
      graph.release();
    }
    // A process that is let go was frozen until the thaw; one that is killed, until the kill began.
    const frozenUntil = killed.length > 0 ? thawStart : performance.now();
    return { imageDir: writer.imageDir, objects, frozenMs: frozen.length > 0 ? frozenUntil - frozenAt : 0, killed, warnings };
  }

  /** A line for each object rule that selects none of `objects`; with `strict`, a usage error naming them all. */
  private unmatchedSelectors(policy: Policy, objects: readonly CollectedObjectEntry[], strict: boolean): string[] {
    const subjects = objects.map((o) => ({ type: o.type, groups: this.registry.groupsOf(o.type), attributes: o.attributes }));
    const lines = policy.unmatched(subjects).map(({ rule, source }) => `${describeSelection(rule)} (${source}) matches no collected object, so it has no effect`);
    if (strict && lines.length > 0) {
      throw new CrError(`--strict: ${lines.join('; ')}; --dry-run --json lists every object's attributes`, ExitCode.Usage);
    }
    return lines;
  }

  /** After a failed checkpoint: thaws, and if that fails too, says so in the error the user sees. */
  private async thawAfterFailure(frozen: readonly ResourceNode[], err: unknown): Promise<void> {
    try {
      await this.thaw(frozen, () => false);
    } catch (thawErr) {
      if (err instanceof Error) err.message += `\nthe target could not be let go again: ${(thawErr as Error).message}`;
    }
  }

  /** Thaws in reverse order of freezing; every node is tried, the first failure is reported. */
  private async thaw(frozen: readonly ResourceNode[], kill: (node: ResourceNode) => boolean): Promise<void> {
    let first: unknown;
    for (const node of [...frozen].reverse()) {
      try {
        await this.registry.get(node.type).plugin.thaw?.(node, { kill: kill(node) });
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  /**
   * Every object's decision, parents before children: an object whose kernel object another one
   * claims is left to that one; otherwise a rule for the object or its type wins;
   * otherwise the plugin's own default for it; otherwise its parents' decision if that left them
   * all out (the memory of a process that is not saved is not saved either; the objects of a
   * namespace that exists at restore exist there too); otherwise the policy default. Then the
   * external references: objects not saved that restore must find alive.
   */
  private decideAll(graph: ResourceGraph, policy: Policy, owners: Owners): ObjectEntry[] {
    const decided = new Map<string, ObjectEntry>();
    for (const type of this.registry.orderedTypes()) {
      const groups = this.registry.groupsOf(type);
      for (const node of graph.ofType(type)) {
        const parents = node.parents.flatMap((p) => decided.get(p) ?? []);
        const leftOut = parents.length > 0 && parents.every((p) => p.policy.decision !== 'include') ? parents[0] : undefined;
        const fallback = node.defaultDecision
          ? { decision: node.defaultDecision.decision, rule: node.defaultDecision.why, source: `plugin ${node.type}` }
          : leftOut
            ? { decision: leftOut.policy.decision, rule: `below ${leftOut.key}`, source: leftOut.policy.source }
            : undefined;
        const subject = { type, groups, attributes: node.attributes };
        const entry: ObjectEntry = {
          key: node.key,
          type: node.type,
          id: node.id,
          parents: [...node.parents],
          attributes: { ...node.attributes },
          policy: ownedElsewhere(node, owners) ?? policy.decide(subject, fallback),
        };
        // External by a rule, advice or the configured default is the user saying "it must be
        // there"; external only by inheritance or a plugin's default is not, unless it is used.
        const said = fallback === undefined || policy.ruleFor(subject) !== undefined;
        if (said && entry.policy.decision === 'external') entry.reference = { usedBy: [] };
        decided.set(node.key, entry);
      }
    }
    markUsedObjects(graph, decided);
    return [...decided.values()];
  }

  /**
   * Every type is collected, excluded ones too, so that the manifest and a dry run list every
   * object with the rule that decided it. Plugins report unsupported objects in save, or through
   * `defers.unsupported`, not here. Once every type is collected, every claim has its one owner.
   */
  private async collect(target: CheckpointTarget, freeze: boolean, signal?: AbortSignal): Promise<Collected> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.collectOnce(target, freeze, signal);
      } catch (err) {
        if (!(err instanceof CollectAgainError)) throw err;
        if (attempt >= COLLECT_TRIES) {
          throw new TargetError(`the target kept changing while cr froze it (${COLLECT_TRIES} tries; the last time: ${err.message}); try again when it is quieter`);
        }
        // A forking loop forks on its own clock: a short pause lets the next try fall between forks.
        await new Promise((ok) => setTimeout(ok, 5 * attempt));
      }
    }
  }

  /** One try of collect (see collect): a freeze that throws CollectAgainError lets everything go again. */
  private async collectOnce(target: CheckpointTarget, freeze: boolean, signal?: AbortSignal): Promise<Collected> {
    const graph = new ResourceGraph();
    const root = rootOf(target, this.kernel);
    graph.add(root.type, { id: root.id, handle: root.handle });
    const frozen: ResourceNode[] = [];
    let frozenAt = 0;
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
              // Namespaces carry their kind, so that `namespaces:kind=uts` selects them across types.
              const attributes = plugin.namespaceKind ? { ...obj.attributes, kind: plugin.namespaceKind } : (obj.attributes ?? {});
              const untyped = untypedAttributes(attributes, this.registry.selectableBy(type));
              if (untyped.length > 0) throw new PluginError(`plugin ${source} (type ${type}) collected ${type}:${obj.id} with ${untyped.join(', ')}, not as it declares in selectableBy`);
              graph.add(type, { ...obj, attributes }, parent.key);
            }
          }
        }
        if (!freeze || !plugin.freeze) continue;
        for (const node of graph.ofType(type)) {
          signal?.throwIfAborted();
          if (frozen.length === 0) frozenAt = performance.now();
          await plugin.freeze(node);
          frozen.push(node);
        }
      }
      const owners = claimOwners(graph, (type) => this.registry.get(type).source);
      return { graph, frozen, frozenAt, owners };
    } catch (err) {
      await this.thawAfterFailure(frozen, err);
      graph.release();
      throw err;
    }
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

/**
 * An object left out that a saved object uses (a segment the saved memory has attached) is an
 * external reference: the restored program needs it, so restore must find it alive. An excluded
 * one turns external, and its rule says why.
 */
function markUsedObjects(graph: ResourceGraph, decided: ReadonlyMap<string, ObjectEntry>): void {
  for (const node of graph.all()) {
    if (decided.get(node.key)?.policy.decision !== 'include') continue;
    for (const key of node.uses ?? []) {
      const used = decided.get(key);
      if (!used || used.policy.decision === 'include') continue;
      used.reference ??= { usedBy: [] };
      if (!used.reference.usedBy.includes(node.key)) used.reference.usedBy.push(node.key);
    }
  }
  for (const entry of decided.values()) {
    const usedBy = entry.reference?.usedBy ?? [];
    if (usedBy.length === 0) continue;
    const { decision, rule, source } = entry.policy;
    entry.policy =
      decision === 'exclude'
        ? { decision: 'external', rule: `${rule}: excluded, but used by ${usedBy.join(', ')}`, source }
        : { decision, rule: `${rule}; used by ${usedBy.join(', ')}`, source };
  }
}
