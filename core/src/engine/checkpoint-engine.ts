import { arch, hostname, release } from 'node:os';
import type { CheckpointTarget, Compression, ObjectEntry } from '@cr/schemas';
import { inject, injectable } from 'tsyringe';
import { CollectAgainError, CrError, ExitCode, PluginError, TargetError } from '../errors.js';
import { ResourceGraph } from '../graph/resource-graph.js';
import { ImageWriter } from '../image/image-writer.js';
import { ParentImage } from '../image/parent-image.js';
import { blobPath, recordPath } from '../image/layout.js';
import { Kernel } from '../kernel/kernel.js';
import { LOGGER, type Logger } from '../log/logger.js';
import { PhaseClock, describeBytes, type PhaseTimings } from '../log/phases.js';
import { PROGRESS, type ProgressReporter } from '../log/progress.js';
import type { BlobOptions, PreCopy, PreCopyContext, ResourceNode, SaveContext } from '../plugin/contract.js';
import { PluginRegistry } from '../plugin/registry.js';
import type { AppliedAdvice } from '../policy/from-config.js';
import { describeSelection, type Policy } from '../policy/policy.js';
import { untypedAttributes } from '../policy/selector-types.js';
import { describeZodError } from '../zod-issues.js';
import { claimOwners, ownedElsewhere, type Owners } from './claims.js';
import { refusalError, refusalsOf, type Refusal } from './refusals.js';
import { refuseUnmetRequirements } from './requirements.js';
import { rootOf } from './targets.js';
import { explainFreezeFailure } from './trace-access.js';
import { CR_VERSION } from './version.js';
import { ONE_SHOT } from '../one-shot-parse.js';

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
  /** Store blobs compressed (`--compress`). */
  compression?: Compression;
  /**
   * Called with the committed image's path, to hand the image on (`--stream` writes it to
   * standard output). With `kill`, it runs while the target is still frozen, and the target is
   * killed only once it has succeeded; if it fails, the target is let go as after any failure.
   * Without `kill`, it runs once the target runs again.
   */
  deliver?: (imageDir: string) => Promise<void>;
  /**
   * Copy what plugins can copy while the target runs first (`--pre-copy`), in at most `rounds`
   * rounds, each copying what changed during the one before, until that stops shrinking; the
   * target is then frozen only to copy the rest.
   */
  preCopy?: { rounds: number };
  /** A previous image of the same target (`--parent`): what is unchanged since is left to it (an incremental image). */
  parent?: string;
}

/** What each pre-copy round copied while the target ran, in the plugins' units (pages), and how long it took. */
export interface PreCopyReport {
  rounds: { copied: number; ms: number }[];
}

/** What a dry run found: every object with its decision, and what the user should hear of. */
export interface CheckpointPlan {
  objects: CollectedObjectEntry[];
  /** One line each: a selector that matched no collected object. */
  warnings: string[];
  /** How long collect and decide took, in milliseconds. */
  phases: PhaseTimings;
  /** Every included object that a checkpoint would refuse, and why. */
  refusals: Refusal[];
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
  /** How long each phase took, in milliseconds: validate, (pre-copy,) collect, freeze, decide, save, then thaw and commit, or commit and kill. */
  phases: PhaseTimings;
  /** With `preCopy`: the rounds run before the freeze. */
  preCopy?: PreCopyReport;
}

/** A plugin's pre-copy of one object, with the blobs it wrote. */
interface StartedPreCopy {
  preCopy: PreCopy;
  blobs: Record<string, string>;
}

/** What a plugin's save returned for one object, checked and written once the target is let go (or before it is killed). */
interface SavedRecord {
  node: ResourceNode;
  entry: ObjectEntry;
  record: unknown;
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
 * below it are collected → apply policy → save in dependency order → thaw → check and write the
 * records, commit (with --kill: check, write and commit while still frozen, then kill).
 * Any failure removes the partial image and thaws what was frozen, so the target carries on as
 * if nothing happened. Each phase is timed and logged (see PhaseClock), and long work reported to
 * the progress reporter.
 */
@injectable()
export class CheckpointEngine {
  constructor(
    @inject(PluginRegistry) private readonly registry: PluginRegistry,
    @inject(Kernel) private readonly kernel: Kernel,
    @inject(LOGGER) private readonly log: Logger,
    @inject(PROGRESS) private readonly progress: ProgressReporter,
  ) {}

  /** Collects and decides without saving anything (what `--dry-run` shows). */
  async plan(target: CheckpointTarget, policy: Policy, strict = false): Promise<CheckpointPlan> {
    const clock = new PhaseClock(this.log);
    this.log.info({ target }, `dry run: what a checkpoint of ${describeTarget(target)} would save`);
    const { graph, owners } = await this.collect(target, false, clock);
    try {
      const { objects, warnings } = await clock.time('decide', () => this.decide(graph, policy, owners, strict), ({ objects }) => describeDecisions(objects));
      const refusals = await refusalsOf(graph, new Map(objects.map((e) => [e.key, e])), owners, this.registry);
      return { objects, warnings, refusals, phases: clock.timings };
    } finally {
      graph.release();
    }
  }

  async checkpoint(request: CheckpointRequest): Promise<CheckpointResult> {
    // Ended once the target runs again: ending a pre-copy (lifting write-protection) takes time the freeze need not include.
    const preCopies = new Map<string, StartedPreCopy>();
    try {
      return await this.checkpointWith(request, preCopies);
    } finally {
      this.endPreCopies(preCopies);
    }
  }

  private async checkpointWith(request: CheckpointRequest, preCopies: Map<string, StartedPreCopy>): Promise<CheckpointResult> {
    const { target, policy, signal } = request;
    const clock = new PhaseClock(this.log);
    const started = performance.now();
    this.log.info({ target, imageDir: request.imageDir, kill: request.kill ?? false }, `checkpoint of ${describeTarget(target)} into ${request.imageDir}`);
    // The image path is checked and the partial directory made before anything is frozen.
    const parent = request.parent === undefined ? undefined : await clock.time('validate', () => this.openParent(request.parent!, target), (p) => `parent image ${p.imageDir}`);
    const writer = await clock.time('validate', () => ImageWriter.create(request.imageDir, signal, request.compression), (w) => `image path ${w.imageDir} is free`);
    let collected: Collected;
    let preCopy: PreCopyReport | undefined;
    try {
      if (request.preCopy) {
        const rounds = request.preCopy.rounds;
        preCopy = await clock.time('pre-copy', () => this.preCopy(target, rounds, writer, preCopies, parent, signal), (r) => describePreCopy(r));
      }
      collected = await this.collect(target, true, clock, signal);
    } catch (err) {
      writer.abort();
      throw err;
    }
    const { graph, frozen, frozenAt, owners } = collected;
    const objects: ObjectEntry[] = [];
    const records: SavedRecord[] = [];
    let warnings: string[];
    let bytes = 0;
    // Without --kill the target runs again as soon as the last object is saved: checking and
    // writing the records and committing the image need only what save returned.
    let thawedAt: number | undefined;
    let thawFailure: unknown;
    try {
      const decision = await clock.time('decide', () => this.decide(graph, policy, owners, request.strict ?? false), ({ objects }) => describeDecisions(objects));
      warnings = decision.warnings;
      const decided = new Map(decision.objects.map((e) => [e.key, e]));
      const refusals = await refusalsOf(graph, decided, owners, this.registry);
      if (refusals.length > 0) throw refusalError(refusals);
      const included = decision.objects.filter((e) => e.policy.decision === 'include').length;
      const progress = this.progress.start({ phase: 'save', label: 'saving objects', unit: 'objects', total: included });
      try {
        for (const type of this.registry.orderedTypes()) {
          for (const node of graph.ofType(type)) {
            const entry: ObjectEntry = decided.get(node.key)!;
            signal?.throwIfAborted();
            if (entry.policy.decision === 'include') {
              const saved = await clock.piece('save', node.key, () => this.save(node, entry, writer, target, warnings, preCopies.get(node.key), parent), ({ bytes: b }) => `${Object.keys(entry.blobs ?? {}).length} blob(s), ${describeBytes(b)}`);
              bytes += saved.bytes;
              records.push({ node, entry, record: saved.record });
              progress.advance(1);
            }
            objects.push(entry);
          }
        }
      } finally {
        progress.end();
      }
      clock.report('save', `${included} object(s), ${describeBytes(bytes)} of blobs`);
      signal?.throwIfAborted();
      if (!request.kill) {
        thawFailure = await this.thawAll(frozen, () => false, clock, graph);
        thawedAt = performance.now();
      }
      await clock.time('commit', () => {
        for (const { node, entry, record } of records) this.storeRecord(node, entry, record, writer);
        dropUnsavedBlobs(preCopies, objects, writer);
        writer.commit({
          format: 'cr-image',
          tool: { name: 'cr', version: CR_VERSION },
          createdAt: new Date().toISOString(),
          host: { kernelRelease: release(), arch: arch(), hostname: hostname() },
          target,
          plugins: this.registry.all().map(({ plugin, source }) => ({ type: plugin.type, version: plugin.version, package: source })),
          objects,
          ...(request.advice ? { advice: request.advice } : {}),
          ...(parent ? { parent: { path: parent.imageDir, manifest: parent.manifestDigest } } : {}),
        });
      }, () => `${records.length} record(s) checked and written, image at ${writer.imageDir}`);
      if (request.kill) await request.deliver?.(writer.imageDir);
    } catch (err) {
      writer.abort();
      if (thawedAt === undefined) await this.thawAfterFailure(frozen, err, clock);
      else if (thawFailure !== undefined && err instanceof Error) err.message += `\nthe target could not be let go again: ${(thawFailure as Error).message}`;
      graph.release();
      throw err;
    }
    // --kill ends only what the image holds: a process left out by policy carries on.
    const saved = new Set(objects.filter((o) => o.record).map((o) => o.key));
    const killed = request.kill ? frozen.filter((n) => saved.has(n.key)).map((n) => n.key) : [];
    if (thawedAt === undefined) {
      // A process that is killed was frozen until the kill began.
      thawedAt = performance.now();
      thawFailure = await this.thawAll(frozen, (node) => killed.includes(node.key), clock, graph);
    }
    if (thawFailure !== undefined) throw thawFailure;
    const frozenMs = frozen.length > 0 ? thawedAt - frozenAt : 0;
    this.log.info(
      { ms: performance.now() - started, frozenMs, objects: saved.size, bytes },
      `checkpoint done: ${saved.size} object(s), ${describeBytes(bytes)} of blobs, frozen for ${frozenMs.toFixed(1)} ms, in ${(performance.now() - started).toFixed(1)} ms`,
    );
    if (!request.kill) await request.deliver?.(writer.imageDir);
    return { imageDir: writer.imageDir, objects, frozenMs, killed, warnings, phases: clock.timings, ...(preCopy ? { preCopy } : {}) };
  }

  /**
   * The thaw (or kill) phase: lets every frozen node go, or ends those `kill` names, and releases
   * the graph's handles. Returns what failed, for the caller to report once the image is dealt with.
   */
  private async thawAll(frozen: readonly ResourceNode[], kill: (node: ResourceNode) => boolean, clock: PhaseClock, graph: ResourceGraph): Promise<unknown> {
    const killing = frozen.some(kill);
    try {
      await clock.time(killing ? 'kill' : 'thaw', () => this.thaw(frozen, kill, clock), () => `${frozen.length} object(s)`);
      return undefined;
    } catch (err) {
      return err;
    } finally {
      graph.release();
    }
  }

  /** Every object's decision, checked for claims nobody owns and for selectors that match nothing. */
  private decide(graph: ResourceGraph, policy: Policy, owners: Owners, strict: boolean): { objects: ObjectEntry[]; warnings: string[] } {
    const objects = this.decideAll(graph, policy, owners);
    for (const o of objects) {
      this.log.debug({ object: o.key, decision: o.policy }, `decide ${o.key}: ${o.policy.decision} (${o.policy.rule}, from ${o.policy.source})`);
    }
    refuseUnmetRequirements(graph, new Map(objects.map((e) => [e.key, e])));
    return { objects, warnings: this.unmatchedSelectors(policy, objects, strict) };
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
  private async thawAfterFailure(frozen: readonly ResourceNode[], err: unknown, clock: PhaseClock): Promise<void> {
    if (frozen.length > 0) this.log.info({ objects: frozen.length }, `letting ${frozen.length} frozen object(s) go after the failure`);
    try {
      await this.thaw(frozen, () => false, clock);
    } catch (thawErr) {
      if (err instanceof Error) err.message += `\nthe target could not be let go again: ${(thawErr as Error).message}`;
    }
  }

  /** Thaws in reverse order of freezing; every node is tried, the first failure is reported. */
  private async thaw(frozen: readonly ResourceNode[], kill: (node: ResourceNode) => boolean, clock: PhaseClock): Promise<void> {
    let first: unknown;
    for (const node of [...frozen].reverse()) {
      const ctx = { kill: kill(node), log: this.objectLog(node) };
      try {
        await clock.step(ctx.kill ? 'kill' : 'thaw', node.key, () => this.registry.get(node.type).plugin.thaw?.(node, ctx));
      } catch (err) {
        first ??= err;
      }
    }
    if (first) throw first;
  }

  /** The logger a plugin is given for one of its objects. */
  private objectLog(node: ResourceNode): Logger {
    return this.log.child({ plugin: node.type, object: node.key });
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
  private async collect(target: CheckpointTarget, freeze: boolean, clock: PhaseClock, signal?: AbortSignal, only?: ReadonlySet<string>): Promise<Collected> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.collectOnce(target, freeze, clock, signal, only);
      } catch (err) {
        if (!(err instanceof CollectAgainError)) throw err;
        if (attempt >= COLLECT_TRIES) {
          throw new TargetError(`the target kept changing while cr froze it (${COLLECT_TRIES} tries; the last time: ${err.message}); try again when it is quieter`);
        }
        this.log.debug({ attempt, reason: err.message }, `collect again: ${err.message}`);
        // A forking loop forks on its own clock: a short pause lets the next try fall between forks.
        await new Promise((ok) => setTimeout(ok, 5 * attempt));
      }
    }
  }

  /** One try of collect (see collect), of the types in `only` if given: a freeze that throws CollectAgainError lets everything go again. */
  private async collectOnce(target: CheckpointTarget, freeze: boolean, clock: PhaseClock, signal?: AbortSignal, only?: ReadonlySet<string>): Promise<Collected> {
    const graph = new ResourceGraph();
    const root = rootOf(target, this.kernel);
    graph.add(root.type, { id: root.id, handle: root.handle });
    const frozen: ResourceNode[] = [];
    let frozenAt = 0;
    try {
      for (const type of this.registry.orderedTypes()) {
        if (only && !only.has(type)) continue;
        const { plugin, source } = this.registry.get(type);
        for (const parentType of plugin.collectsFrom) {
          for (const parent of graph.ofType(parentType)) {
            const ctx = { target, pluginOptions: this.registry.optionsOf(type), log: this.log.child({ plugin: type, object: parent.key }) };
            const found = await clock.piece('collect', parent.key, () => plugin.collect(parent, ctx), (objs) => `${objs.length} ${type} object(s)`);
            for (const obj of found) {
              if (typeof obj.id !== 'string' || obj.id === '') {
                throw new PluginError(`plugin ${source} (type ${type}) collected an object without a string id below ${parent.key}`);
              }
              // Namespaces carry their kind, so that `namespaces:kind=uts` selects them across types.
              const attributes = plugin.namespaceKind ? { ...obj.attributes, kind: plugin.namespaceKind } : (obj.attributes ?? {});
              const untyped = untypedAttributes(attributes, this.registry.selectableBy(type));
              if (untyped.length > 0) throw new PluginError(`plugin ${source} (type ${type}) collected ${type}:${obj.id} with ${untyped.join(', ')}, not as it declares in selectableBy`);
              graph.add(type, { ...obj, attributes }, parent.key);
              this.log.trace({ object: `${type}:${obj.id}`, parent: parent.key, attributes }, `collected ${type}:${obj.id} below ${parent.key}`);
            }
          }
        }
        if (!freeze || !plugin.freeze) continue;
        for (const node of graph.ofType(type)) {
          signal?.throwIfAborted();
          if (frozen.length === 0) frozenAt = performance.now();
          try {
            await clock.piece('freeze', node.key, () => plugin.freeze!(node));
          } catch (err) {
            throw explainFreezeFailure(this.kernel, err) ?? err;
          }
          frozen.push(node);
        }
      }
      const owners = claimOwners(graph, (type) => this.registry.get(type).source);
      clock.report('collect', `${graph.all().length} object(s)`);
      if (freeze) clock.report('freeze', `${frozen.length} object(s)`);
      return { graph, frozen, frozenAt, owners };
    } catch (err) {
      await this.thawAfterFailure(frozen, err, clock);
      graph.release();
      throw err;
    }
  }

  /** Saves one object's record and blobs; returns how many bytes of blobs it wrote. */
  /** Has the plugin save `node` (its blobs go into the image as it goes); returns the record it made and the bytes of its blobs. */
  private async save(node: ResourceNode, entry: ObjectEntry, writer: ImageWriter, target: CheckpointTarget, warnings: string[], started?: StartedPreCopy, parent?: ParentImage): Promise<{ record: unknown; bytes: number }> {
    const { plugin } = this.registry.get(node.type);
    const blobs: Record<string, string> = { ...started?.blobs };
    let bytes = 0;
    const ctx: SaveContext = {
      target,
      pluginOptions: this.registry.optionsOf(node.type),
      log: this.objectLog(node),
      writeBlob: this.blobWriter(node, writer, blobs, 'save', (b) => (bytes += b)),
      warn: (message) => void warnings.push(message),
      ...(started ? { preCopy: started.preCopy } : {}),
      ...(parent?.objectOf(node.key) ? { parent: parent.objectOf(node.key)! } : {}),
    };
    const record = await plugin.save(node, ctx);
    if (Object.keys(blobs).length > 0) entry.blobs = blobs;
    return { record, bytes };
  }

  /** Checks the record a plugin made for `node` against its schema and writes it into the image. */
  private storeRecord(node: ResourceNode, entry: ObjectEntry, record: unknown, writer: ImageWriter): void {
    const { plugin, source } = this.registry.get(node.type);
    const checked = plugin.recordSchema.safeParse(record, ONE_SHOT);
    if (!checked.success) {
      throw new PluginError(`plugin ${source} produced an invalid record for ${node.key}:\n  ${describeZodError(checked.error, record).join('\n  ')}`);
    }
    entry.record = recordPath(node.type, node.id);
    writer.writeFile(entry.record, `${JSON.stringify({ type: node.type, id: node.id, version: plugin.version, record: checked.data }, null, 2)}\n`);
  }

  /** writeBlob for `node`: streams a blob into the image, records its path in `blobs`, shows progress and counts its bytes. */
  private blobWriter(node: ResourceNode, writer: ImageWriter, blobs: Record<string, string>, phase: string, counted: (bytes: number) => void) {
    const { source } = this.registry.get(node.type);
    const log = this.objectLog(node);
    return async (name: string, data: Uint8Array | AsyncIterable<Uint8Array>, options?: BlobOptions): Promise<void> => {
      if (blobs[name]) throw new PluginError(`plugin ${source} wrote blob "${name}" of ${node.key} twice`);
      const rel = blobPath(node.type, node.id, name);
      blobs[name] = rel;
      const total = data instanceof Uint8Array ? data.byteLength : options?.expectedSize;
      const progress = this.progress.start({ phase, label: `${node.key} ${name}`, unit: 'bytes', ...(total === undefined ? {} : { total }) });
      let blobBytes = 0;
      try {
        await writer.writeStream(rel, data, {
          onWritten: (written) => {
            blobBytes += written;
            progress.advance(written);
          },
          expectedSize: options?.expectedSize,
        });
      } finally {
        progress.end();
        counted(blobBytes);
      }
      log.trace({ blob: name, bytes: blobBytes }, `wrote blob ${name} of ${node.key}: ${describeBytes(blobBytes)}`);
    };
  }

  /**
   * Before the freeze: finds the objects of the plugins that can pre-copy (collecting only their
   * types and those above them, nothing frozen), starts a pre-copy of each, and runs rounds over
   * all of them until what a round copies stops shrinking, or `maxRounds` rounds ran.
   */
  private async preCopy(target: CheckpointTarget, maxRounds: number, writer: ImageWriter, preCopies: Map<string, StartedPreCopy>, parent: ParentImage | undefined, signal?: AbortSignal): Promise<PreCopyReport> {
    const types = this.registry.orderedTypes().filter((type) => this.registry.get(type).plugin.preCopy);
    const rounds: PreCopyReport['rounds'] = [];
    if (types.length === 0) return { rounds };
    const { graph } = await this.collect(target, false, new PhaseClock(this.log), signal, this.typesAbove(types));
    try {
      for (const type of types) {
        const { plugin } = this.registry.get(type);
        for (const node of graph.ofType(type)) {
          const blobs: Record<string, string> = {};
          const ctx: PreCopyContext = {
            pluginOptions: this.registry.optionsOf(type),
            log: this.objectLog(node),
            writeBlob: this.blobWriter(node, writer, blobs, 'pre-copy', () => undefined),
            ...(parent?.objectOf(node.key) ? { parent: parent.objectOf(node.key)! } : {}),
          };
          preCopies.set(node.key, { preCopy: await plugin.preCopy!(node, ctx), blobs });
        }
      }
    } finally {
      graph.release();
    }
    for (let round = 0; round < maxRounds; round++) {
      signal?.throwIfAborted();
      const start = performance.now();
      let copied = 0;
      for (const { preCopy } of preCopies.values()) copied += await preCopy.round();
      const ms = performance.now() - start;
      rounds.push({ copied, ms });
      this.log.debug({ round, copied, ms }, `pre-copy round ${round}: ${copied} unit(s) in ${ms.toFixed(1)} ms`);
      const previous = rounds[round - 1]?.copied;
      if (previous !== undefined && (copied === 0 || copied >= previous)) break;
    }
    return { rounds };
  }

  /** `types` and every type they are collected below, up to the target. */
  private typesAbove(types: readonly string[]): Set<string> {
    const found = new Set<string>();
    const visit = (type: string) => {
      if (found.has(type) || !this.registry.has(type)) return;
      found.add(type);
      for (const parent of this.registry.get(type).plugin.collectsFrom) visit(parent);
    };
    types.forEach(visit);
    return found;
  }

  /**
   * The image given with `--parent`, checked before anything is frozen: a whole cr image, of the
   * same target, with its blobs stored as they are (they are compared with in place).
   */
  private openParent(path: string, target: CheckpointTarget): ParentImage {
    const parent = ParentImage.open(path, this.registry);
    const saved = parent.manifest.target;
    if (target.kind !== 'process' || saved.kind !== 'process' || saved.pid !== target.pid) {
      throw new TargetError(`--parent ${path} is an image of ${describeTarget(saved)}, not of ${describeTarget(target)}; give an earlier image of the same process`);
    }
    if (parent.compressed()) throw new TargetError(`--parent ${path} is stored compressed; an incremental image needs a parent written without --compress`);
    return parent;
  }

  /** Ends every pre-copy (each once; a failure to end one is logged, the others still end). */
  private endPreCopies(preCopies: Map<string, StartedPreCopy>): void {
    for (const [key, { preCopy }] of preCopies) {
      try {
        preCopy.end();
      } catch (err) {
        this.log.warn({ object: key, err }, `ending the pre-copy of ${key} failed: ${(err as Error).message}`);
      }
    }
  }
}

/** Blobs a pre-copy wrote for objects that were not saved after all (excluded, or gone meanwhile) are no part of the image. */
function dropUnsavedBlobs(preCopies: ReadonlyMap<string, StartedPreCopy>, objects: readonly ObjectEntry[], writer: ImageWriter): void {
  const saved = new Set(objects.filter((o) => o.record).map((o) => o.key));
  for (const [key, { blobs }] of preCopies) {
    if (!saved.has(key)) for (const rel of Object.values(blobs)) writer.remove(rel);
  }
}

/** "3 round(s): 65536, 120, 14": what each pre-copy round copied. */
function describePreCopy(report: PreCopyReport): string {
  return `${report.rounds.length} round(s): ${report.rounds.map((r) => r.copied).join(', ')}`;
}

function describeTarget(target: CheckpointTarget): string {
  return target.kind === 'process' ? `PID ${target.pid}` : `IPC namespace ${target.path}`;
}

/** "5 include, 2 external": how many objects each decision got. */
function describeDecisions(objects: readonly CollectedObjectEntry[]): string {
  const counts = new Map<string, number>();
  for (const o of objects) counts.set(o.policy.decision, (counts.get(o.policy.decision) ?? 0) + 1);
  return [...counts].map(([decision, n]) => `${n} ${decision}`).join(', ') || 'no object';
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
