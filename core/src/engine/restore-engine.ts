import { existsSync, mkdirSync, rmdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ObjectEntry } from '@cr/schemas';
import { inject, injectable } from 'tsyringe';
import { CrError, ImageError, PluginError, TargetError } from '../errors.js';
import { ParentImage } from '../image/parent-image.js';
import { ImageReader } from '../image/image-reader.js';
import { recordProblems } from '../image/record-checks.js';
import { Kernel } from '../kernel/kernel.js';
import { NamespaceHandle } from '../kernel/namespaces.js';
import type { NamespaceKind } from '../kernel/namespaces.js';
import { LOGGER, type Logger } from '../log/logger.js';
import { PhaseClock, type PhaseTimings } from '../log/phases.js';
import { PROGRESS, type ProgressReporter, type ProgressWork } from '../log/progress.js';
import type { RestoreContext, RestoreOptions, ResourcePlugin, RestoredProcess } from '../plugin/contract.js';
import { PluginRegistry } from '../plugin/registry.js';
import { externalReferences, findExternals, resolveMappings, type ExternalMapping } from './external-references.js';
import { assertInheritFdsUsed } from './inherited-fds.js';
import { IntoNamespaces } from './into-namespaces.js';

export interface RestoreRequest {
  imageDir: string;
  options: RestoreOptions;
  /** External references to find as other live objects (`--map-external`). */
  mapExternal?: readonly ExternalMapping[];
  /** Aborts the restore (Ctrl-C) until the restored processes run: everything created is undone. */
  signal?: AbortSignal;
}

export interface RestoredObject {
  key: string;
  type: string;
  id: string;
  /** Where a restored namespace was pinned (`--pin-ns`). */
  pinnedAt?: string;
  /** The PID of a restored process (objects of a `holdsNamespaces` type). */
  pid?: number;
}

/** What a restore did: the objects it restored, and how long each phase took, in milliseconds. */
export interface RestoreResult {
  restored: RestoredObject[];
  /** check, preflight, recreate, pin (with a pin directory), resume. */
  phases: PhaseTimings;
}

/** A record of the image that passed every check, with the plugin that restores it. */
export interface CheckedRecord {
  entry: ObjectEntry;
  plugin: ResourcePlugin;
  record: unknown;
}

/** What RestoreEngine.check returns: the open image and its records in restore order. */
export interface CheckedImage {
  reader: ImageReader;
  records: CheckedRecord[];
}

interface Planned extends CheckedRecord {
  ctx: RestoreContext;
}

interface Done extends Planned {
  value: unknown;
  pinnedAt?: string;
}

/**
 * restore = read and validate the whole image → find every external reference alive, and
 * preflight every record → recreate in restore
 * order (namespaces and their IPC objects, then processes and what is below them) → pin
 * namespaces → resume in reverse order (processes run from here on). If any step fails,
 * everything already created is undone in reverse order, so a failed restore leaves nothing behind.
 * Each phase is timed and logged (see PhaseClock), and long work reported to the progress reporter.
 */
@injectable()
export class RestoreEngine {
  constructor(
    @inject(PluginRegistry) private readonly registry: PluginRegistry,
    @inject(Kernel) private readonly kernel: Kernel,
    @inject(LOGGER) private readonly log: Logger,
    @inject(PROGRESS) private readonly progress: ProgressReporter,
  ) {}

  async restore(request: RestoreRequest): Promise<RestoreResult> {
    const clock = new PhaseClock(this.log);
    const started = performance.now();
    this.log.info({ imageDir: request.imageDir, options: request.options }, `restore from ${request.imageDir}`);
    const { reader, records } = await clock.time('check', () => this.check(request.imageDir), (checked) => `${checked.records.length} record(s) read and checked`);
    const into = new IntoNamespaces(this.kernel, request.options.into ?? {});
    try {
      const values = new Map<string, unknown>();
      const { plan, pinDir, madePinDir } = await clock.time('preflight', () => this.preflight(request, reader, records, into, values, clock), ({ plan }) => `${plan.length} object(s) can be restored`);
      const restored = await this.recreate(plan, values, pinDir, madePinDir, request.options, clock, request.signal);
      const ms = performance.now() - started;
      this.log.info({ ms, objects: restored.length }, `restore done: ${restored.length} object(s) in ${ms.toFixed(1)} ms`);
      return { restored, phases: clock.timings };
    } finally {
      into.close();
    }
  }

  /**
   * Everything that can be checked before anything is changed: the external references are found
   * alive (their values put in `values`), the namespaces to go into opened, the pin directory
   * prepared, and every plugin's preflight passed. Returns the restore plan.
   */
  private async preflight(
    request: RestoreRequest,
    reader: ImageReader,
    records: readonly CheckedRecord[],
    into: IntoNamespaces,
    values: Map<string, unknown>,
    clock: PhaseClock,
  ): Promise<{ plan: Planned[]; pinDir: string | undefined; madePinDir: boolean }> {
    const { parent: link } = reader.manifest;
    // An incremental image: its parents are found and checked before anything is changed.
    const parent = link ? ParentImage.open(link.path, this.registry, link.manifest) : undefined;
    const contextFor = (entry: ObjectEntry) => this.context(reader, entry, request.options, values, into, parent);
    const references = externalReferences(reader.manifest.objects);
    const mapTo = resolveMappings(request.mapExternal ?? [], references);
    // Opened now, so that a wrong path is reported before anything is changed.
    into.all();
    const plan = this.plan(records, request.options, contextFor);
    assertInheritFdsUsed(request.options.inheritFds, plan);
    const pinDir = request.options.pinDir === undefined ? undefined : resolve(request.options.pinDir);
    const madePinDir = pinDir !== undefined && this.preparePinDir(pinDir, plan);
    try {
      for (const [key, value] of await findExternals(references, mapTo, this.registry, contextFor, reader.imageDir)) {
        this.log.debug({ object: key }, `preflight ${key}: the external reference was found`);
        values.set(key, value);
      }
      for (const p of plan) if (p.plugin.preflight) await clock.step('preflight', p.entry.key, () => p.plugin.preflight!(p.record, p.ctx));
    } catch (err) {
      if (madePinDir) tryRmdir(pinDir!);
      throw err;
    }
    return { plan, pinDir, madePinDir };
  }

  /** Recreates, pins and resumes everything planned; on failure, undoes it all in reverse order. */
  private async recreate(
    plan: Planned[],
    values: Map<string, unknown>,
    pinDir: string | undefined,
    madePinDir: boolean,
    options: RestoreOptions,
    clock: PhaseClock,
    signal: AbortSignal | undefined,
  ): Promise<RestoredObject[]> {
    const done: Done[] = [];
    try {
      const progress = this.progress.start({ phase: 'recreate', label: 'restoring objects', unit: 'objects', total: plan.length });
      try {
        for (const p of plan) {
          signal?.throwIfAborted();
          const value = await clock.piece('recreate', p.entry.key, () => p.plugin.restore(p.record, p.ctx));
          done.push({ ...p, value });
          values.set(p.entry.key, value);
          progress.advance(1);
        }
      } finally {
        progress.end();
      }
      clock.report('recreate', `${done.length} object(s)`);
      signal?.throwIfAborted();
      if (pinDir) await clock.time('pin', () => this.pinNamespaces(done, pinDir, options), () => `namespaces pinned in ${pinDir}`);
      await clock.time(
        'resume',
        async () => {
          for (const d of [...done].reverse()) if (d.plugin.resume) await clock.step('resume', d.entry.key, () => d.plugin.resume!(d.record, d.value, d.ctx));
        },
        () => `${done.length} object(s)`,
      );
      return done.map((d) => ({
        key: d.entry.key,
        type: d.entry.type,
        id: d.entry.id,
        ...(d.pinnedAt ? { pinnedAt: d.pinnedAt } : {}),
        ...(d.plugin.holdsNamespaces ? { pid: (d.value as RestoredProcess).pid } : {}),
      }));
    } catch (err) {
      const problems = await clock.time('rollback', () => this.rollback(done, clock), (p) => `${done.length} object(s) undone${p.length > 0 ? `, ${p.length} problem(s)` : ''}`);
      if (madePinDir) tryRmdir(pinDir!);
      if (problems.length === 0) throw err;
      throw new CrError(`${(err as Error).message}\nrollback was incomplete:\n  ${problems.join('\n  ')}`, err instanceof CrError ? err.exitCode : 1, { cause: err });
    } finally {
      for (const d of done) if (d.value instanceof NamespaceHandle) d.value.close();
    }
  }

  /**
   * Reads and checks the whole image without looking at the system: the manifest, every file's
   * size, every record's digest, schema and version, the installed plugins' versions, and each
   * record's agreement with its blobs and the rest of the image (`checkRecord`). Returns the
   * records in restore order. Throws an ImageError (PluginError for a missing or too old plugin)
   * naming the first problem; an image that holds no saved object is refused too.
   */
  check(imageDir: string): CheckedImage {
    const reader = ImageReader.open(imageDir);
    const { manifest } = reader;
    if (!manifest.objects.some((o) => o.record)) {
      const left = manifest.objects.length === 0 ? 'it lists no object' : 'every object it lists was left out at checkpoint';
      throw new ImageError(`${imageDir} holds nothing to restore: ${left} (cr inspect ${imageDir} shows the decisions)`);
    }
    for (const saved of manifest.plugins) {
      if (!manifest.objects.some((o) => o.type === saved.type && o.record)) continue;
      if (!this.registry.has(saved.type)) {
        throw new PluginError(`the image holds ${saved.type} records, saved by ${saved.package}, but no installed plugin handles "${saved.type}"; install ${saved.package}`);
      }
      const { plugin, source } = this.registry.get(saved.type);
      if (saved.version > plugin.version) {
        throw new PluginError(`the image holds ${saved.type} records of version ${saved.version}; the installed ${source} reads version ${plugin.version} and older: upgrade it`);
      }
    }
    const saved = this.registry.restoreOrder().flatMap((type) => manifest.objects.filter((o) => o.type === type && o.record));
    // Their records are read whole just below, which checks them.
    reader.checkFiles(new Set(saved.map((o) => o.record!)));
    const records: CheckedRecord[] = saved.map((entry) => {
      const { plugin } = this.registry.get(entry.type);
      return { entry, plugin, record: reader.readRecord(entry, plugin.recordSchema).record };
    });
    const problems = recordProblems(reader, this.registry, records);
    if (problems.length > 0) {
      const more = problems.length > 1 ? ` (and ${problems.length - 1} more inconsistent record(s): cr inspect ${imageDir} lists them)` : '';
      throw new ImageError(`${problems[0]}${more}`);
    }
    return { reader, records };
  }

  /** The restore plan: every checked record with its context, and whether its namespaces have somewhere to live. */
  private plan(records: readonly CheckedRecord[], options: RestoreOptions, contextFor: (entry: ObjectEntry) => RestoreContext): Planned[] {
    const planned = records.map((r) => ({ ...r, ctx: contextFor(r.entry) }));
    const namespaces = planned.filter((p) => p.plugin.namespaceKind && !options.into?.[p.plugin.namespaceKind]);
    const homes = planned.some((p) => p.plugin.holdsNamespaces);
    if (namespaces.length > 0 && !homes && options.pinDir === undefined) {
      throw new TargetError(
        `the image holds namespaces (${namespaces.map((p) => p.entry.key).join(', ')}) but no process to live in them; ` +
          'pass --pin-ns DIR to keep them alive on DIR',
      );
    }
    return planned;
  }

  /** What the plugin restoring (or finding) `entry` is told about the image and the restore. */
  private context(reader: ImageReader, entry: ObjectEntry, options: RestoreOptions, values: ReadonlyMap<string, unknown>, into: IntoNamespaces, parent?: ParentImage): RestoreContext {
    const inParent = parent?.objectOf(entry.key);
    const { manifest } = reader;
    const blobs = entry.blobs ?? {};
    const blob = (name: string) => {
      const rel = blobs[name];
      if (!rel) throw new ImageError(`object ${entry.key} has no blob "${name}" in ${reader.imageDir}`);
      return rel;
    };
    const progress = (name: string, total: number): ProgressWork => ({ phase: 'recreate', label: `${entry.key} ${name}`, unit: 'bytes', total });
    return {
      options,
      pluginOptions: this.registry.has(entry.type) ? this.registry.optionsOf(entry.type) : undefined,
      log: this.log.child({ plugin: entry.type, object: entry.key }),
      key: entry.key,
      parents: entry.parents,
      restored: <T>(key: string) => values.get(key) as T | undefined,
      saved: (key: string) => manifest.objects.some((o) => o.key === key && o.record !== undefined),
      readBlobInto: async (name, target) => {
        const task = this.progress.start(progress(name, target.byteLength));
        try {
          await reader.readBlobInto(blob(name), target);
          task.advance(target.byteLength);
        } finally {
          task.end();
        }
      },
      readBlob: (name) => this.reported(reader.readBlobChunks(blob(name)), progress(name, reader.blobSize(blob(name)))),
      storedBlob: (name) => {
        const stored = reader.openStoredBlob(blob(name));
        return stored && { ...stored, verified: () => this.reported(stored.verified(), progress(name, stored.size)) };
      },
      blobSize: (name) => reader.blobSize(blob(name)),
      namespaces: () => ({ ...into.all(), ...this.namespacesBelow(entry.key, manifest.objects, values) }),
      ...(inParent ? { parent: inParent } : {}),
    };
  }

  /** Passes `chunks` on, reporting their sizes as the progress of `work`. */
  private async *reported(chunks: AsyncIterable<Uint8Array>, work: ProgressWork): AsyncGenerator<Uint8Array> {
    const task = this.progress.start(work);
    try {
      for await (const chunk of chunks) {
        yield chunk;
        task.advance(chunk.byteLength);
      }
    } finally {
      task.end();
    }
  }

  /** The restored namespaces whose objects were collected below `key`, by kind. */
  private namespacesBelow(key: string, objects: readonly ObjectEntry[], values: ReadonlyMap<string, unknown>): Partial<Record<NamespaceKind, NamespaceHandle>> {
    const found: Partial<Record<NamespaceKind, NamespaceHandle>> = {};
    for (const o of objects) {
      const value = values.get(o.key);
      if (o.parents.includes(key) && value instanceof NamespaceHandle) found[value.kind] = value;
    }
    return found;
  }

  /** Creates the pin directory if needed and makes sure no pin path is taken; true if it created it. */
  private preparePinDir(pinDir: string, plan: Planned[]): boolean {
    const created = !existsSync(pinDir);
    for (const path of this.pinPaths(plan, pinDir).values()) {
      if (existsSync(path)) throw new TargetError(`cannot pin on ${path}: it exists; run cr unpin ${pinDir} or choose another directory`);
    }
    if (created) mkdirSync(pinDir, { recursive: true, mode: 0o700 });
    return created;
  }

  private pinPaths(plan: Planned[], pinDir: string): Map<string, string> {
    const paths = new Map<string, string>();
    const used = new Set<string>();
    for (const p of plan) {
      const kind = p.plugin.namespaceKind;
      if (!kind) continue;
      const name = used.has(kind) ? `${kind}-${p.entry.id}` : kind;
      used.add(kind);
      paths.set(p.entry.key, join(pinDir, name));
    }
    return paths;
  }

  private pinNamespaces(done: Done[], pinDir: string, options: RestoreOptions): void {
    const paths = this.pinPaths(done, pinDir);
    for (const d of done) {
      const kind = d.plugin.namespaceKind;
      if (!kind || options.into?.[kind]) continue;
      if (!(d.value instanceof NamespaceHandle)) {
        throw new PluginError(`plugin for ${d.entry.type} declares namespaceKind "${kind}" but its restore() did not return a NamespaceHandle`);
      }
      const path = paths.get(d.entry.key)!;
      this.kernel.namespaces.pin(d.value, path);
      d.pinnedAt = path;
    }
  }

  private async rollback(done: Done[], clock: PhaseClock): Promise<string[]> {
    const problems: string[] = [];
    for (const d of [...done].reverse()) {
      try {
        await clock.step('rollback', d.entry.key, async () => {
          if (d.pinnedAt) this.kernel.namespaces.unpin(d.pinnedAt);
          await d.plugin.rollback?.(d.record, d.value, d.ctx);
        });
      } catch (err) {
        problems.push(`${d.entry.key}: ${(err as Error).message}`);
      }
    }
    return problems;
  }
}

function tryRmdir(path: string): void {
  try {
    rmdirSync(path);
  } catch {
    // Not empty or already gone: either way nothing of ours is left in it.
  }
}
