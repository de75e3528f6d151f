import { posix } from 'node:path';
import type { FileEntry, Manifest } from '@cr/schemas';
import { TARGET_IPC_NS, TARGET_PROCESS } from '../plugin/contract.js';
import { MANIFEST_DIGEST_FILE, MANIFEST_FILE, blobPath, recordPath } from './layout.js';

/**
 * Whether `rel` names a file inside the image directory: relative, normalised, no `..` and not
 * the manifest itself. Anything else could make cr read outside the image.
 */
export function isImageFileName(rel: string): boolean {
  return (
    rel !== '' &&
    !rel.includes('\0') &&
    !posix.isAbsolute(rel) &&
    !rel.endsWith('/') &&
    posix.normalize(rel) === rel &&
    !rel.split('/').includes('..') &&
    rel !== MANIFEST_FILE &&
    rel !== MANIFEST_DIGEST_FILE
  );
}

/**
 * What is wrong with a manifest that passed its schema but does not hang together: file names
 * outside the image, objects whose key, record or blobs are not where the format puts them,
 * duplicate objects, parents and users that are not in the image, records of a type the
 * manifest lists no plugin version for. Returns the first problem, or undefined.
 */
export function manifestProblem(manifest: Manifest): string | undefined {
  for (const [rel, entry] of Object.entries(manifest.files)) {
    if (!isImageFileName(rel)) return `it lists the file ${JSON.stringify(rel)}, which is not a file name inside the image`;
    const problem = compressionProblem(entry, manifest.formatVersion);
    if (problem) return `the file ${rel} ${problem}`;
  }
  const types = new Set<string>();
  for (const { type } of manifest.plugins) {
    if (types.has(type)) return `it lists plugin type ${type} twice`;
    types.add(type);
  }
  const byKey = new Map<string, ObjectEntry>();
  for (const o of manifest.objects) {
    if (byKey.has(o.key)) return `it lists object ${o.key} twice`;
    byKey.set(o.key, o);
  }
  const image: ImageIndex = { manifest, byKey, types, target: targetKeyPattern(manifest) };
  const referenced = new Set<string>();
  for (const o of manifest.objects) {
    const problem = objectProblem(o, image, referenced);
    if (problem) return `object ${o.key}: ${problem}`;
  }
  const stray = Object.keys(manifest.files).find((rel) => !referenced.has(rel));
  if (stray) return `it lists the file ${stray}, which no object refers to`;
  return undefined;
}

type ObjectEntry = Manifest['objects'][number];

/** What is wrong with how a file says it is compressed: frames that cannot hold its data, or a format that has no compression. */
function compressionProblem(entry: FileEntry, formatVersion: number): string | undefined {
  const c = entry.compression;
  if (!c) return undefined;
  if (formatVersion < 2) return `is compressed, which image format ${formatVersion} has no place for`;
  if (c.frames.length !== Math.ceil(entry.size / c.frameSize)) return `has ${c.frames.length} frame(s) for ${entry.size} bytes of data in frames of ${c.frameSize}`;
  if (c.frames.reduce((sum, n) => sum + n, 0) !== c.size) return `has frames that add up to another size than its stored ${c.size} bytes`;
  return undefined;
}

interface ImageIndex {
  manifest: Manifest;
  byKey: ReadonlyMap<string, ObjectEntry>;
  /** The types the manifest lists plugin versions for. */
  types: ReadonlySet<string>;
  /** What the key of the checkpoint's target node looks like. */
  target: RegExp;
}

/** The first problem of one object's entry; the files it refers to are added to `referenced`. */
function objectProblem(o: ObjectEntry, { manifest, byKey, types, target }: ImageIndex, referenced: Set<string>): string | undefined {
  if (o.key !== `${o.type}:${o.id}`) return `its key is not "${o.type}:${o.id}" (type:id)`;
  const saved = o.policy.decision === 'include';
  if (saved !== (o.record !== undefined)) return saved ? 'it was included but has no record' : `it was not saved (${o.policy.decision}) but has a record`;
  if (o.reference && o.policy.decision !== 'external') return `it is an external reference but its decision is ${o.policy.decision}`;
  if (o.blobs && !o.record) return 'it has blobs but no record';
  if (o.record) {
    if (!types.has(o.type)) return `the manifest lists no plugin version for type ${o.type}`;
    if (o.record !== recordPath(o.type, o.id)) return `its record is at ${JSON.stringify(o.record)} instead of ${recordPath(o.type, o.id)}`;
    if (!manifest.files[o.record]) return `its record ${o.record} is not among the image's files`;
    if (manifest.files[o.record]!.compression) return `its record ${o.record} is compressed; only blobs are`;
    referenced.add(o.record);
  }
  for (const [name, rel] of Object.entries(o.blobs ?? {})) {
    if (rel !== blobPath(o.type, o.id, name)) return `its blob "${name}" is at ${JSON.stringify(rel)} instead of ${blobPath(o.type, o.id, name)}`;
    if (!manifest.files[rel]) return `its blob ${rel} is not among the image's files`;
    referenced.add(rel);
  }
  const parent = o.parents.find((p) => !byKey.has(p) && !target.test(p));
  if (parent !== undefined) return `its parent ${parent} is neither an object of the image nor the checkpoint's target`;
  const user = o.reference?.usedBy.find((k) => byKey.get(k)?.record === undefined);
  if (user !== undefined) return `it is used by ${user}, which is not a saved object of the image`;
  return undefined;
}

/** The key the checkpoint's target node had: `target:process:PID` or `target:ipc-ns:INODE`. */
function targetKeyPattern(manifest: Manifest): RegExp {
  const t = manifest.target;
  return t.kind === 'process' ? new RegExp(`^${TARGET_PROCESS}:${t.pid}$`) : new RegExp(`^${TARGET_IPC_NS}:[0-9]+$`);
}
