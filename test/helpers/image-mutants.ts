import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { xxh3 } from '@node-rs/xxhash';
import fc from 'fast-check';

/**
 * Mutants of a cr image, for fuzzing what cr accepts. A mutation works at one of three layers:
 * - `raw`: bytes of a file change (or the file goes, or becomes a link, FIFO or directory) and
 *   the digests are left alone, as damage would leave them: the digests must catch it;
 * - `json`: a value of the manifest or of a record changes, and every digest (record files in
 *   the manifest, the manifest in manifest.sha256) is recomputed, as a forger would: only the
 *   semantic checks can catch it;
 * - `blob`: a blob's bytes or length change, with its digest and size recomputed.
 */
export type Mutation =
  | { layer: 'raw'; file: string; op: 'flip' | 'truncate' | 'append' | 'delete' | 'symlink' | 'fifo' | 'dir'; at: number }
  | { layer: 'json'; file: string; path: readonly (string | number)[]; op: JsonOp }
  | { layer: 'blob'; file: string; op: 'flip' | 'truncate' | 'extend'; at: number };

export type JsonOp = { set: unknown } | { delete: true } | { duplicate: true } | { swapWith: number } | { addKey: string };

/** An image as the fuzzer holds it: every file's bytes by its name inside the image directory. */
export interface PristineImage {
  readonly dir: string;
  readonly files: ReadonlyMap<string, Buffer>;
}

export function loadImage(dir: string): PristineImage {
  const files = new Map<string, Buffer>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else files.set(relative(dir, path), readFileSync(path));
    }
  };
  walk(dir);
  return { dir, files };
}

const MANIFEST = 'manifest.json';
const MANIFEST_DIGEST = 'manifest.sha256';
const isJson = (file: string) => file === MANIFEST || file.startsWith('records/');
const isBlob = (file: string) => file.startsWith('blobs/');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Every path to a value of a JSON document, the root excepted. */
function jsonPaths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (value === null || typeof value !== 'object') return [];
  const entries: [string | number, Json][] = Array.isArray(value) ? value.map((v, i) => [i, v]) : Object.entries(value);
  return entries.flatMap(([k, v]) => [[...prefix, k], ...jsonPaths(v, [...prefix, k])]);
}

/** The value at `path`, or undefined where an earlier mutation took a step of the path away. */
function at(value: Json, path: readonly (string | number)[]): Json | undefined {
  let v: Json | undefined = value;
  for (const k of path) v = v !== null && typeof v === 'object' ? (v as Record<string | number, Json>)[k] : undefined;
  return v;
}

/** Values worth trying where a number is: limits of the kernel's and of JSON's integer types. */
const EDGE_NUMBERS = [-1, 0, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 53, 1.5];
const EDGE_STRINGS = ['', '../x', '../../etc/passwd', '/etc/passwd', '/', 'x'.repeat(300), '0x0', '0xffffffffffffffff', '0x7ffffffff000', '0x1001', 'é'.repeat(40)];

/**
 * The mutations of one image, as a fast-check arbitrary: every file and every value of every
 * JSON document can be hit; replacement values come from the kernel's limits, from the value
 * itself (one more, one less, twice) and from elsewhere in the same image, which is how overlaps,
 * duplicates and crossed references arise.
 */
function mutationArbitrary(image: PristineImage): fc.Arbitrary<Mutation> {
  const names = [...image.files.keys()].sort();
  const documents = new Map(names.filter(isJson).map((f) => [f, JSON.parse(image.files.get(f)!.toString('utf8')) as Json]));
  const targets = [...documents].flatMap(([file, doc]) => jsonPaths(doc).map((path) => ({ file, path })));

  const found = { numbers: new Set<number>(), strings: new Set<string>() };
  for (const [file, doc] of documents) {
    for (const path of jsonPaths(doc)) {
      const v = at(doc, path);
      if (typeof v === 'number') found.numbers.add(v);
      if (typeof v === 'string' && v.length < 200 && !(file === MANIFEST && path[0] === 'files' && path.length > 2)) found.strings.add(v);
    }
  }
  const numbers = [...found.numbers];
  const strings = [...found.strings];

  const raw = fc.record({
    layer: fc.constant('raw' as const),
    file: fc.constantFrom(...names),
    op: fc.constantFrom('flip', 'flip', 'truncate', 'append', 'delete', 'symlink', 'fifo', 'dir'),
    at: fc.nat(),
  });
  const blob = fc.record({
    layer: fc.constant('blob' as const),
    file: fc.constantFrom(...(names.some(isBlob) ? names.filter(isBlob) : names)),
    op: fc.constantFrom('flip', 'flip', 'flip', 'truncate', 'extend'),
    at: fc.nat(),
  });
  // Each record is hit as often as any other, and the records together as often as the manifest,
  // whose many entries would otherwise draw most mutations.
  const within = (file: string) => fc.constantFrom(...targets.filter((t) => t.file === file));
  const records = fc.constantFrom(...[...documents.keys()].filter((f) => f !== MANIFEST)).chain(within);
  const json = fc.oneof(records, within(MANIFEST)).chain(({ file, path }) => {
    const current = at(documents.get(file)!, path)!;
    return jsonOp(current, path, numbers, strings).map((op) => ({ layer: 'json' as const, file, path, op }));
  });
  return fc.oneof({ arbitrary: json, weight: 14 }, { arbitrary: raw, weight: 3 }, { arbitrary: blob, weight: 3 });
}

/** Mutants of one to three mutations, most of them one: each mutation alone must be caught. */
export function mutantArbitrary(image: PristineImage): fc.Arbitrary<Mutation[]> {
  const one = mutationArbitrary(image);
  return fc.oneof({ arbitrary: fc.tuple(one), weight: 3 }, { arbitrary: fc.array(one, { minLength: 2, maxLength: 3 }), weight: 1 });
}

function jsonOp(current: Json, path: readonly (string | number)[], numbers: number[], strings: string[]): fc.Arbitrary<JsonOp> {
  const set = (values: fc.Arbitrary<unknown>) => values.map((v) => ({ set: v }));
  const structural: fc.Arbitrary<JsonOp>[] = [fc.constant({ delete: true as const })];
  if (typeof path[path.length - 1] === 'number') {
    structural.push(fc.constant({ duplicate: true as const }), fc.nat(64).map((i) => ({ swapWith: i })));
  }
  if (current !== null && typeof current === 'object' && !Array.isArray(current)) structural.push(fc.constantFrom('extra', 'version', 'id', 'key').map((k) => ({ addKey: k })));
  // Values of the same kind as the one replaced, which often make a valid image: it must then be restored as it says.
  const alike: fc.Arbitrary<JsonOp>[] = [];
  const edges: fc.Arbitrary<JsonOp>[] = [];
  if (typeof current === 'number') {
    alike.push(set(fc.constantFrom(current + 1, current - 1, current * 2)), set(fc.constantFrom(...numbers)));
    // The same low 32 bits, or the same value negated: what a C int would silently make of it.
    edges.push(set(fc.constantFrom(...EDGE_NUMBERS, -current, current + 2 ** 32, current - 2 ** 32)));
  } else if (typeof current === 'string') {
    alike.push(set(fc.constantFrom(...strings)));
    if (/^0x[0-9a-f]+$/.test(current)) alike.push(set(fc.constantFrom(bump(current, 0x1000n), bump(current, -0x1000n), bump(current, 1n))));
    edges.push(set(fc.constantFrom(...EDGE_STRINGS, `${current}x`)));
  } else if (typeof current === 'boolean') {
    alike.push(set(fc.constant(!current)));
  }
  const foreign = set(fc.oneof(fc.constantFrom(null, true, {}, []), fc.jsonValue({ maxDepth: 2 })));
  return fc.oneof(
    ...(alike.length > 0 ? [{ arbitrary: fc.oneof(...alike), weight: 4 }] : []),
    ...(edges.length > 0 ? [{ arbitrary: fc.oneof(...edges), weight: 3 }] : []),
    { arbitrary: foreign, weight: 1 },
    { arbitrary: fc.oneof(...structural), weight: 1 },
  );
}

function bump(hex: string, by: bigint): string {
  const v = BigInt(hex) + by;
  return `0x${(v < 0n ? 0n : v).toString(16)}`;
}

/**
 * Writes the image with `mutations` applied into `out` (which must not exist). Unchanged files
 * are hard links to the pristine image's; changed ones are new files. Returns what was changed,
 * for the record of a failure.
 */
export function writeMutant(image: PristineImage, mutations: readonly Mutation[], out: string): void {
  const files = new Map(image.files);
  const docs = new Map<string, Json>();
  const doc = (file: string) => {
    if (!docs.has(file)) docs.set(file, JSON.parse(files.get(file)!.toString('utf8')) as Json);
    return docs.get(file)!;
  };
  const forged = (m: Mutation) => m.layer !== 'raw' && files.has(m.file);
  for (const m of mutations.filter(forged)) {
    if (m.layer === 'json' && m.file !== MANIFEST) applyJson(doc(m.file), m.path, m.op);
    if (m.layer === 'blob') files.set(m.file, mutateBytes(files.get(m.file)!, m.op, m.at));
  }
  for (const [file, value] of docs) files.set(file, Buffer.from(`${JSON.stringify(value, null, 2)}\n`));
  if (mutations.some(forged)) {
    const manifest = doc(MANIFEST) as { files: Record<string, { size: number; digest: string }> };
    for (const [file, entry] of Object.entries(manifest.files ?? {})) {
      const bytes = files.get(file);
      if (bytes && bytes !== image.files.get(file)) manifest.files[file] = { size: bytes.length, digest: digestLike(entry.digest, bytes) };
    }
    for (const m of mutations) if (m.layer === 'json' && m.file === MANIFEST) applyJson(manifest as unknown as Json, m.path, m.op);
    const text = `${JSON.stringify(manifest, null, 2)}\n`;
    files.set(MANIFEST, Buffer.from(text));
    files.set(MANIFEST_DIGEST, Buffer.from(`sha256:${createHash('sha256').update(text).digest('hex')}\n`));
  }
  const special = new Map<string, Mutation & { layer: 'raw' }>();
  for (const m of mutations) {
    if (m.layer !== 'raw' || !files.has(m.file)) continue;
    if (['flip', 'truncate', 'append'].includes(m.op)) files.set(m.file, mutateBytes(files.get(m.file)!, m.op as 'flip', m.at));
    else special.set(m.file, m);
  }
  mkdirSync(out);
  for (const [file, bytes] of files) {
    const path = join(out, file);
    mkdirSync(dirname(path), { recursive: true });
    const how = special.get(file)?.op;
    if (how === 'delete') continue;
    if (how === 'fifo') execFileSync('mkfifo', [path]);
    else if (how === 'dir') mkdirSync(path);
    else if (how === 'symlink') {
      const outside = `${out}.outside-${file.replaceAll('/', '_')}`;
      writeFileSync(outside, bytes);
      symlinkSync(outside, path);
    } else if (bytes === image.files.get(file)) linkSync(join(image.dir, file), path);
    else writeFileSync(path, bytes);
  }
}

function digestLike(digest: string, bytes: Buffer): string {
  if (digest.startsWith('xxh3-64:')) return `xxh3-64:${xxh3.xxh64(bytes).toString(16).padStart(16, '0')}`;
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

function mutateBytes(bytes: Buffer, op: 'flip' | 'truncate' | 'append' | 'extend', offset: number): Buffer {
  if (op === 'append' || op === 'extend') return Buffer.concat([bytes, Buffer.alloc(1 + (offset % 4096), offset & 0xff)]);
  if (bytes.length === 0) return Buffer.from([offset & 0xff]);
  if (op === 'truncate') return bytes.subarray(0, offset % bytes.length);
  const copy = Buffer.from(bytes);
  copy[offset % copy.length] ^= 1 << (offset % 8);
  return copy;
}

function applyJson(root: Json, path: readonly (string | number)[], op: JsonOp): void {
  const parent = at(root, path.slice(0, -1)) as Record<string | number, Json> | Json[] | undefined;
  const key = path[path.length - 1]!;
  if (parent === undefined || parent === null || typeof parent !== 'object' || !(key in parent)) return;
  if ('set' in op) (parent as Record<string | number, Json>)[key] = op.set as Json;
  else if ('delete' in op) {
    if (Array.isArray(parent)) parent.splice(key as number, 1);
    else delete parent[key];
  } else if ('duplicate' in op && Array.isArray(parent)) parent.splice((key as number) + 1, 0, structuredClone(parent[key as number]!));
  else if ('swapWith' in op && Array.isArray(parent)) {
    const other = op.swapWith % parent.length;
    [parent[key as number], parent[other]] = [parent[other]!, parent[key as number]!];
  } else if ('addKey' in op) {
    const target = parent[key as never] as Json;
    if (target !== null && typeof target === 'object' && !Array.isArray(target)) target[op.addKey] = 1;
  }
}
