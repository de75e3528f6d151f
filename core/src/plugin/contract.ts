import type { CheckpointTarget, Decision } from '@cr/schemas';
import type { ZodType } from 'zod';
import type { NamespaceHandle, NamespaceKind } from '../kernel/namespaces.js';
import type { Logger } from '../log/logger.js';

/**
 * The plugin contract, version 2.
 *
 * A plugin owns one resource type. cr finds its objects by asking it to `collect` below each
 * parent object (and lets it `freeze` them before their own children are collected), asks the
 * policy whether each object is saved, calls `save` for the saved ones in dependency order, and
 * `thaw` at the end. At restore time it calls `preflight` for every record before anything is
 * changed, then `restore` in dependency order, `resume` in reverse order once everything exists,
 * and `rollback` in reverse order if a step fails. The full guide, with a worked third-party
 * example, is docs/plugins.md.
 *
 * Version 2 only added optional members (freeze, thaw, resume, groups, findExternal, selectableBy,
 * optionsSchema, refusals, inheritableFds, preCopy), collected object fields (defaultDecision,
 * uses) and context members (readBlob, namespaces, saved, options.inheritFds, pluginOptions, log,
 * writeBlob's options, preCopy), so plugins written for version 1 load unchanged.
 *
 * Plugins are tsyringe-injectable classes: take services (`Kernel`) through `@inject` from
 * '@cr/core', never from a second copy of tsyringe, and never call libc yourself.
 */
export const PLUGIN_API_VERSION = 2;
/** The oldest contract version this cr still loads plugins for. */
export const MIN_PLUGIN_API_VERSION = 1;

/** Where collection starts: the checkpoint target is the one node of one of these types. */
export const TARGET_PROCESS = 'target:process';
export const TARGET_IPC_NS = 'target:ipc-ns';

/** Attribute values that policy rules can select objects by (an id, a key, a path …). */
export type Attributes = Readonly<Record<string, string | number>>;

/**
 * The type of an attribute users select objects by, which says how a selector may write its
 * value and how `collect` must hold it:
 * - `uint`: a non-negative integer (an id, a pid, an fd, a size), written in decimal or 0x hex;
 * - `key`: a SysV IPC key, unsigned 32-bit, written in decimal or hex, held as "0x%08x";
 * - `string`: text (a path, a command name), matched exactly or as a glob;
 * - `lineage`: the object's number and those of the objects it descends from (a process and its
 *   ancestors), held as decimal numbers separated by spaces, the topmost first ("4242 4250"); a
 *   selector gives one number (a uint) and selects every object whose lineage has it: a subtree;
 * - `{ oneOf }`: one of these words.
 */
export type AttributeType = 'uint' | 'key' | 'string' | 'lineage' | { readonly oneOf: readonly string[] };

/** One object of the resource graph as the engine holds it during a checkpoint. */
export interface ResourceNode<H = unknown> {
  /** `${type}:${id}`, unique in a checkpoint. */
  readonly key: string;
  readonly type: string;
  /** Stable identity: namespace inode, shm id, … The same object found twice is saved once. */
  readonly id: string;
  /** What the owning plugin needs to save the object (an open fd, a PID …); never written out. */
  readonly handle: H;
  readonly attributes: Attributes;
  /** Keys of the nodes this object was collected under. */
  readonly parents: readonly string[];
  readonly defaultDecision?: DefaultDecision;
  /** Keys of the objects this one uses (see CollectedObject.uses). */
  readonly uses?: readonly string[];
  /** Kernel objects this object saves (see CollectedObject.claims). */
  readonly claims?: readonly string[];
  /** A kernel object this object leaves to whichever object claims it (see CollectedObject.defers). */
  readonly defers?: Deferral;
  /** Objects that must be saved whenever this one is (see CollectedObject.requires). */
  readonly requires?: readonly Requirement[];
}

/**
 * Another object that must be saved whenever this one is: a process's children and parent are,
 * since the restored tree could not be whole without them. `why` ends the refusal's sentence.
 */
export interface Requirement {
  key: string;
  /** "it is the parent of PID 7 (sh); …": why and what to do. */
  why: string;
}

/**
 * What a plugin decides for an object when no config rule, advice or flag does: a process's
 * namespace that is cr's own (the host's) is `external`, it exists wherever cr restores.
 * Objects below an external object are external too, unless a rule says otherwise.
 */
export interface DefaultDecision {
  decision: Decision;
  /** Shown as the rule in the decision table, e.g. "cr's own namespace". */
  why: string;
}

/** What `collect` returns for each object it finds. */
export interface CollectedObject<H = unknown> {
  id: string;
  handle: H;
  attributes?: Attributes;
  /** Called once the checkpoint is over, saved or not (close an fd, detach memory …). */
  release?: () => void;
  defaultDecision?: DefaultDecision;
  /**
   * Keys of other objects this one uses, e.g. `sysvipc-shm:5` for a segment a process has
   * attached. When this object is saved and one it uses is not, that one becomes an external
   * reference: the manifest names it, and restore must find it alive or fails before it starts.
   */
  uses?: readonly string[];
  /**
   * The kernel objects this object saves and restores, by name: `fd:PID:N` for descriptor N of
   * process PID (the files plugin claims every descriptor it saves); a plugin may name other kinds
   * of object the same way (`KIND:ID`). Each kernel object has one owner: two collected objects
   * claiming the same name is a PluginError (exit 6) naming both, found before anything is saved.
   */
  claims?: readonly string[];
  /** A kernel object this object stands for but leaves to a plugin that claims it; see Deferral. */
  defers?: Deferral;
  /**
   * Objects that must be saved whenever this one is: when this one is included and one of these is
   * excluded or external, the checkpoint (and `--dry-run`) is refused (exit 7) before anything is
   * saved, naming both and the rule that left the other out.
   */
  requires?: readonly Requirement[];
}

/**
 * How an object gives way to another plugin's: the files plugin collects one object per
 * descriptor, also for descriptors it cannot save (a message queue, an eventfd), so that each can
 * be selected and listed. When another collected object claims `object`, this object is not
 * saved, whatever the rules say: it is decided `exclude`, with the rule "claim of KEY" naming the
 * claimant. When none does, its own plugin saves it as usual, or, if `unsupported` is set and the
 * policy includes it, the checkpoint is refused with that message (exit 7) before anything is saved.
 */
export interface Deferral {
  /** The kernel object, named as `claims` names them (`fd:PID:N`). */
  object: string;
  /** Why its own plugin cannot save it, and how to leave it out: the refusal when nobody claims it. */
  unsupported?: string;
}

export interface CollectContext<O = unknown> {
  readonly target: CheckpointTarget;
  /** This plugin's options from the config's `pluginOptions.TYPE`, as its `optionsSchema` parsed them. */
  readonly pluginOptions: O;
  /** Logs as the parent object's collection of this type (see `SaveContext.log`). */
  readonly log: Logger;
}

export interface ThawContext {
  /** The checkpoint succeeded, this object is in the image, and the user asked to stop it (`--kill`). */
  readonly kill: boolean;
  /** Logs as this object (see `SaveContext.log`). */
  readonly log: Logger;
}

/** Hints for `writeBlob`. */
export interface BlobOptions {
  /**
   * About how many bytes a streamed blob will have (an upper bound is fine), for the progress
   * bar the CLI shows while a long blob is written, and to reserve the blob's disk space at once
   * (a blob much smaller than this costs the reservation for nothing); a Uint8Array's own size is known.
   */
  readonly expectedSize?: number;
}

export interface SaveContext<O = unknown> {
  readonly target: CheckpointTarget;
  /** As in CollectContext. */
  readonly pluginOptions: O;
  /**
   * Stores a blob of raw bytes beside the record (page data, segment contents) and checksums it.
   * Pass an async iterable to stream data that should never be held whole in memory.
   */
  writeBlob(name: string, data: Uint8Array | AsyncIterable<Uint8Array>, options?: BlobOptions): Promise<void>;
  /**
   * cr's logger, bound to this plugin and object (`{plugin, object}` on every line): `debug` for
   * the steps a user debugging a failure needs, `trace` for finer detail. It goes to stderr with
   * `-v`/`-vv`/`-vvv` and always to `--log-file`. Errors the plugin throws are logged by cr.
   */
  readonly log: Logger;
  /**
   * Tells the user of something the image leaves out that the program may notice (events not
   * read yet that are dropped): one `cr: warning:` line, naming the object, in the checkpoint's output.
   */
  warn(message: string): void;
  /** What this plugin's `preCopy` started for this object while the target ran (`--pre-copy`), if it did. */
  readonly preCopy?: PreCopy;
  /** The object in the image given with `--parent`, if that image holds it: what need not be saved again. */
  readonly parent?: ParentObject;
}

/**
 * What a plugin copies of one object while the target still runs (`cr checkpoint --pre-copy`),
 * so that less is left to copy once it is frozen: the memory of a process, copied whole and then
 * again where it was written since, until that stops shrinking.
 */
export interface PreCopy {
  /**
   * Copies what changed since the previous round (everything, in the first) and returns how much
   * that was, in the plugin's own unit (pages): the engine stops the rounds once it stops shrinking.
   */
  round(): Promise<number>;
  /** Stops copying and leaves the object as it was; called once however the checkpoint ends (save may have ended it already). */
  end(): void;
}

/**
 * The same object in the image a checkpoint is taken against (`cr checkpoint --parent IMG`), and
 * through `parent()` in that image's parent: an incremental image saves only what changed since,
 * and restore reads the rest from there.
 */
export interface ParentObject {
  readonly imageDir: string;
  /** Its record there, checked against this plugin's schema. */
  readonly record: unknown;
  /** Where one of its blobs is stored, as it is (a checkpoint refuses a compressed parent): to read parts of it in place. */
  blobFile(name: string): string;
  /** Streams one of its blobs, verified (as RestoreContext.readBlob). */
  readBlob(name: string): AsyncIterable<Uint8Array>;
  /** One of its blobs to be read in place (as RestoreContext.storedBlob). */
  storedBlob(name: string): StoredBlob | undefined;
  /** The same object in the parent of that image, if there is one and it holds the object. */
  parent(): ParentObject | undefined;
}

/** What `preCopy` is given: as SaveContext, for an object that is not frozen. */
export interface PreCopyContext<O = unknown> {
  readonly pluginOptions: O;
  readonly log: Logger;
  /** As SaveContext.writeBlob: the blob belongs to the object, whose record must account for it. */
  writeBlob(name: string, data: Uint8Array | AsyncIterable<Uint8Array>, options?: BlobOptions): Promise<void>;
  /** As SaveContext.parent. */
  readonly parent?: ParentObject;
}

export interface RestoreOptions {
  /** Directory to pin restored namespaces in (`--pin-ns`). */
  readonly pinDir?: string;
  /** Existing namespaces to restore into instead of new ones, by kind (`--into-ipc-ns`). */
  readonly into?: Readonly<Partial<Record<NamespaceKind, string>>>;
  /**
   * Where a restored process's descriptors that pointed outside the checkpoint (a terminal, a
   * pipe from the shell) come from, by fd number: a path to open (`--inherit-fd 1=out.log`).
   * Descriptors not named here are taken from cr's own fd of the same number, as a shell job.
   */
  readonly inheritFds?: Readonly<Record<number, string>>;
}

/**
 * A blob of the image as it is stored, open for reading in place: checked to be a regular file
 * inside the image of the size the manifest says, but its bytes are to be trusted only once
 * `verified()`, the same file read through by cr, has ended without an error (its digest is checked
 * after the last chunk). Whatever was built from the bytes must not take effect before that.
 */
export interface StoredBlob {
  /** cr's descriptor of the file, read-only. */
  readonly fd: number;
  readonly path: string;
  /** Bytes of data (the file's size). */
  readonly size: number;
  /** The blob's bytes in chunks, in order, as RestoreContext.readBlob streams them (digest checked after the last). */
  verified(): AsyncIterable<Uint8Array>;
  close(): void;
}

export interface RestoreContext<O = unknown> {
  readonly options: RestoreOptions;
  /** As in CollectContext: the options of the restoring cr's config, not of the one that checkpointed. */
  readonly pluginOptions: O;
  /** Logs as this object (see `SaveContext.log`). */
  readonly log: Logger;
  /** This object's key and the keys of its parents, as the image records them. */
  readonly key: string;
  readonly parents: readonly string[];
  /**
   * The value `restore` returned for an object restored earlier (a dependency), by key; for an
   * external reference, what `findExternal` returned for it (the live shm id to attach).
   */
  restored<T = unknown>(key: string): T | undefined;
  /** Whether the image holds a record of `key`, so that it is restored (rather than found, or absent). */
  saved(key: string): boolean;
  /** Reads a blob saved with `writeBlob` into `target`, which must be exactly its size; verified. */
  readBlobInto(name: string, target: Uint8Array): Promise<void>;
  /**
   * Streams a blob saved with `writeBlob` in chunks (each valid until the next is asked for).
   * The digest is checked after the last chunk: the iteration throws there if the blob is corrupt.
   */
  readBlob(name: string): AsyncIterable<Uint8Array>;
  /**
   * A blob saved with `writeBlob`, open for someone other than cr to read in place (a restored
   * process reading its pages itself, one copy instead of two), when it is stored as it is:
   * undefined when it is stored compressed, whose bytes only `readBlob` gives. Close it when done.
   */
  storedBlob(name: string): StoredBlob | undefined;
  /** Size in bytes of a blob saved with `writeBlob`. */
  blobSize(name: string): number;
  /**
   * The namespaces restored from objects collected below this one (a process's UTS and IPC
   * namespaces), by kind: what a process must be created in. Namespace types are restored first.
   */
  namespaces(): Readonly<Partial<Record<NamespaceKind, NamespaceHandle>>>;
  /** For an incremental image: the object in its parent image, if that holds it (see SaveContext.parent). */
  readonly parent?: ParentObject;
}

/** An object of the image as its manifest lists it: saved, left out, or an external reference. */
export interface ImageObject {
  readonly key: string;
  readonly type: string;
  readonly id: string;
  readonly parents: readonly string[];
  readonly attributes: Attributes;
  /** Whether the image holds its record (it is restored, rather than found or absent). */
  readonly saved: boolean;
}

/** A saved record of the image, already checked against its plugin's schema. */
export interface ImageRecord<R = unknown> {
  readonly key: string;
  readonly parents: readonly string[];
  readonly record: R;
}

/** What `checkRecord` is told about the record's place in the image. */
export interface RecordCheckContext {
  /** This object's key and id, and the keys of its parents, as the manifest records them. */
  readonly key: string;
  readonly id: string;
  readonly parents: readonly string[];
  /** Size in bytes of each blob the manifest lists for this object, by name; the files have these sizes. */
  readonly blobSizes: Readonly<Record<string, number>>;
  /** Any object of the image by key, or undefined when the manifest has none. */
  object(key: string): ImageObject | undefined;
  /** The saved records of `type` (this one included for its own type). */
  records<T = unknown>(type: string): readonly ImageRecord<T>[];
}

/** An object an image refers to without holding it, as `findExternal` is asked to find it. */
export interface ExternalReference {
  readonly key: string;
  readonly type: string;
  readonly id: string;
  /** What identified it at checkpoint (id, key, size …), as the manifest records it. */
  readonly attributes: Attributes;
  /** Saved objects that use it; empty when a rule or advice said external. */
  readonly usedBy: readonly string[];
  /** With `--map-external`: the attributes of the live object to use instead of the saved identity. */
  readonly mapTo?: Attributes;
}

/** What `restore` returns for objects of a `holdsNamespaces` type: cr waits for these processes. */
export interface RestoredProcess {
  readonly pid: number;
}

export interface ResourcePlugin<R = unknown, H = unknown, T = unknown, O = unknown> {
  /** The contract version the plugin was written for: MIN_PLUGIN_API_VERSION to PLUGIN_API_VERSION. */
  readonly apiVersion: number;
  /** The resource type this plugin owns, e.g. "uts-ns". */
  readonly type: string;
  /** Version of this type's record format; images with a higher one are refused. */
  readonly version: number;
  readonly description: string;
  /** Parent types whose objects this plugin collects below (`target:process`, "ipc-ns" …). */
  readonly collectsFrom: readonly string[];
  /** Types whose objects must be restored before this type's (parents are implied). */
  readonly dependsOn?: readonly string[];
  /**
   * Set when every object of this type is a namespace of that kind: `restore` must then return a
   * NamespaceHandle, which cr pins with `--pin-ns` and closes when the restore is over.
   */
  readonly namespaceKind?: NamespaceKind;
  /**
   * Set when objects of this type are processes that keep the namespaces they live in alive;
   * without any such object in an image, restored namespaces must be pinned (`--pin-ns`).
   */
  readonly holdsNamespaces?: boolean;
  /**
   * Names under which users select this type together with others: `--exclude sysvipc` for the
   * three SysV types. Every type with a `namespaceKind` is also in the group `namespaces`.
   */
  readonly groups?: readonly string[];
  /**
   * The attributes users can select this type's objects by (`--exclude files:fd=3`), with their
   * types. A selector naming another attribute, or a value not of its type, is refused before
   * any target is touched; `collect` must give these attributes in their typed form. A type that
   * declares none can be selected only as a whole. Namespace types also have `kind`.
   */
  readonly selectableBy?: Readonly<Record<string, AttributeType>>;
  /** Validates records on save and on read. */
  readonly recordSchema: ZodType<R>;
  /**
   * Validates this plugin's options, which users give in the config as `pluginOptions.TYPE`; the
   * parsed value (defaults filled in) is `ctx.pluginOptions`. A bad value is a config error (exit 3)
   * naming the key path. Without it, the plugin takes no options and `pluginOptions.TYPE` is refused.
   */
  readonly optionsSchema?: ZodType<O>;

  collect(parent: ResourceNode, ctx: CollectContext<O>): Promise<CollectedObject<H>[]> | CollectedObject<H>[];
  /**
   * Stops an object from changing until `thaw` (a process is stopped under ptrace). Called right
   * after this type was collected, before the types below it are, and never for a dry run.
   */
  freeze?(node: ResourceNode<H>): Promise<void> | void;
  /** Lets a frozen object go on, or ends it (`ctx.kill`); called however the checkpoint ended. */
  thaw?(node: ResourceNode<H>, ctx: ThawContext): Promise<void> | void;
  /**
   * What stops an included object from being saved, one message each (`PID 7: fd 5 is an epoll
   * instance watching fd 9, which was closed since …`), empty when it can be saved. Called for
   * every included object after the policy, before anything is saved: by `--dry-run` on objects
   * that were never frozen (read /proc, not the frozen task, and expect things to vanish), and by
   * a checkpoint on frozen ones. cr reports every refusal of every object at once.
   */
  refusals?(node: ResourceNode<H>): Promise<readonly string[]> | readonly string[];
  /**
   * Starts copying an object before the target is frozen (`--pre-copy`), for objects whose state is
   * large and changes little (memory); `save` then gets it as `ctx.preCopy` and copies only the
   * rest. Called on an unfrozen object found by a collect without freezing; the object must be
   * left as it was whatever happens, cr's death included.
   */
  preCopy?(node: ResourceNode<H>, ctx: PreCopyContext<O>): Promise<PreCopy> | PreCopy;
  save(node: ResourceNode<H>, ctx: SaveContext<O>): Promise<R> | R;
  /**
   * Checks that a record, which passed `recordSchema`, agrees with its blobs and with the rest of
   * the image (sizes, counts, ranges, ids that must match, objects it names). Called when the
   * image is read, before anything is restored; it must not look at the system (that is
   * `preflight`). Returns one phrase per problem, empty when all is well: cr then refuses the
   * image (exit 4), naming the record. `blobProblems` checks the blobs the record implies.
   */
  checkRecord?(record: R, ctx: RecordCheckContext): readonly string[];
  /**
   * The descriptor numbers of `record` that pointed outside the checkpoint, for which
   * `--inherit-fd N=PATH` can name what to open instead (stdio from a terminal, a pipe end whose
   * other end was outside). cr refuses, before anything is changed, an `--inherit-fd` whose N is
   * none of any record's, so a typo is not silently ignored.
   */
  inheritableFds?(record: R): readonly number[];
  /** Checks, before anything is changed, that `record` can be restored (an id still free …). */
  preflight?(record: R, ctx: RestoreContext<O>): Promise<void> | void;
  /**
   * Finds, before anything is changed, the live object an external reference names where the
   * restore will look for it (same identity, or `ref.mapTo`). Throws a TargetError naming it
   * when it is missing or differs, or when the mapping would not be safe. The return value is
   * what `ctx.restored(ref.key)` gives objects restored later. Without it, references of the
   * type are not checked.
   */
  findExternal?(ref: ExternalReference, ctx: RestoreContext<O>): Promise<unknown> | unknown;
  restore(record: R, ctx: RestoreContext<O>): Promise<T> | T;
  /**
   * Called once every object of the image is restored, in reverse order (the objects below a
   * process first, then the process): the last step, e.g. a process's registers, then letting it run.
   */
  resume?(record: R, restored: T, ctx: RestoreContext<O>): Promise<void> | void;
  /** Undoes `restore` (and `resume`) when a later step of the same restore failed. */
  rollback?(record: R, restored: T, ctx: RestoreContext<O>): Promise<void> | void;
}

/** A constructor tsyringe can build; what a plugin package exports by default (one or an array). */
export type PluginClass = new (...args: any[]) => ResourcePlugin<unknown, unknown, unknown, unknown>;
