import { z } from 'zod';
import { adviceSchema } from './advice.js';
import { decisionSchema, typeNameSchema } from './config.js';

/**
 * The newest image format this code reads and writes; readers refuse images with a higher number.
 * Format 2 adds compressed blobs (a file entry's `compression`): a reader of format 1 would take
 * them for corrupt files. An image with no compressed file is still written as format 1
 * (PLAIN_IMAGE_FORMAT_VERSION), so that an older cr reads it. Format 3 adds incremental images
 * (the manifest's `parent`): a reader of format 2 would restore them without the pages they leave
 * to their parent.
 */
export const INCREMENTAL_IMAGE_FORMAT_VERSION = 3;
/** The format of an image with compressed files and no parent. */
export const COMPRESSED_IMAGE_FORMAT_VERSION = 2;
export const IMAGE_FORMAT_VERSION = 3;
/** The format of an image whose files are all stored as they are. */
export const PLAIN_IMAGE_FORMAT_VERSION = 1;

export const COMPRESSIONS = ['zstd', 'lz4'] as const;
export const compressionSchema = z.enum(COMPRESSIONS);
export type Compression = z.infer<typeof compressionSchema>;

/** How a compressed file is stored: independent frames, each the compression of one slice of the data. */
export const storedCompressionSchema = z.lazy(() =>
  z.strictObject({
    algorithm: compressionSchema.describe('zstd frames or LZ4 frames, one after the other (what zstd -d or lz4 -d reads).'),
    size: z.number().int().nonnegative().describe('Bytes the file takes in the image.'),
    frameSize: z.number().int().positive().describe('Bytes of data each frame holds, but the last, which holds the rest.'),
    frames: z.array(z.number().int().positive()).describe('The stored size of each frame, in order.'),
  }),
);
export type StoredCompression = z.infer<typeof storedCompressionSchema>;

/** "<algorithm>:<hex digest>": sha256 for the manifest and records, xxh3-64 for (large) blobs. */
export const digestSchema = z
  .string()
  .regex(/^(sha256:[0-9a-f]{64}|xxh3-64:[0-9a-f]{16})$/, 'a digest such as "sha256:<64 hex digits>" or "xxh3-64:<16 hex digits>"');

export const fileEntrySchema = z.lazy(() =>
  z.strictObject({
    size: z.number().int().nonnegative().describe('Bytes of data; of a compressed file, the size of its data uncompressed.'),
    digest: digestSchema.describe('Of the data; of a compressed file, of its data uncompressed.'),
    compression: storedCompressionSchema.optional().describe('Set when the file is stored compressed (image format 2).'),
  }),
);
export type FileEntry = z.infer<typeof fileEntrySchema>;

export const policyDecisionSchema = z.lazy(() =>
  z.strictObject({
    decision: decisionSchema,
    rule: z.string().describe('The rule that decided, e.g. "default", "type sysvipc-shm", "object sysvipc-shm key=0x1234".'),
    source: z.string().describe('Where that rule came from: default, a config file, a profile, advice, a flag.'),
  }),
);
export type PolicyDecision = z.infer<typeof policyDecisionSchema>;

export const objectEntrySchema = z.lazy(() =>
  z.strictObject({
    key: z.string().describe('"<type>:<id>", unique in the image.'),
    type: typeNameSchema,
    id: z.string().min(1),
    parents: z.array(z.string()).describe('Keys of the objects this one was collected under.'),
    attributes: z.record(z.string(), z.union([z.string(), z.number()])),
    policy: policyDecisionSchema,
    record: z.string().optional().describe('Path of the record file, for saved objects.'),
    blobs: z.record(z.string(), z.string()).optional().describe('Blob name → path of the blob file.'),
    reference: z
      .strictObject({
        usedBy: z.array(z.string()).describe('Keys of saved objects that use it (mm:1234 has the segment attached); empty when a rule said external.'),
      })
      .optional()
      .describe('Set on an external reference: an object not saved that restore must find alive, with the same attributes (id, key, size …).'),
  }),
);
export type ObjectEntry = z.infer<typeof objectEntrySchema>;

export const targetSchema = z.lazy(() =>
  z.discriminatedUnion('kind', [
    z.strictObject({
      kind: z.literal('process'),
      pid: z.number().int().positive(),
      tree: z.boolean().optional().describe('false: the process alone (cr checkpoint --no-tree), refused if it has children; otherwise it and all its descendants'),
    }),
    z.strictObject({ kind: z.literal('ipc-ns'), path: z.string() }),
  ]),
);
export type CheckpointTarget = z.infer<typeof targetSchema>;

export const manifestSchema = z.lazy(() =>
  z.strictObject({
    format: z.literal('cr-image'),
    formatVersion: z.number().int().positive(),
    tool: z.strictObject({ name: z.literal('cr'), version: z.string() }),
    createdAt: z.iso.datetime(),
    host: z.strictObject({ kernelRelease: z.string(), arch: z.string(), hostname: z.string() }),
    target: targetSchema,
    plugins: z.array(
      z.strictObject({ type: typeNameSchema, version: z.number().int().positive(), package: z.string() }),
    ),
    objects: z.array(objectEntrySchema),
    advice: z
      .strictObject({ file: z.string(), advice: adviceSchema })
      .optional()
      .describe('The advice the checkpointed process had given (cr advise, or its own advice file), as it was applied.'),
    files: z.record(z.string(), fileEntrySchema).describe('Every file of the image but the manifest, with its size and digest.'),
    parent: z
      .strictObject({
        path: z.string().startsWith('/').describe('Where the parent image is; restore reads it there.'),
        manifest: digestSchema.describe('The digest of its manifest (its manifest.sha256), so that another image at that path is refused.'),
      })
      .optional()
      .describe('Set on an incremental image (cr checkpoint --parent, format 3): what it does not hold is read from this image.'),
  }),
);
export type Manifest = z.infer<typeof manifestSchema>;

/** Only the fields needed to decide whether this reader understands the image at all. */
export const manifestHeaderSchema = z.lazy(() =>
  z.object({
    format: z.literal('cr-image'),
    formatVersion: z.number().int().positive(),
    tool: z.object({ version: z.string() }).optional(),
  }),
);

/** A record file: the envelope is checked by cr, `record` by the owning plugin's schema. */
export const recordFileSchema = z.lazy(() =>
  z.strictObject({
    type: typeNameSchema,
    id: z.string().min(1),
    version: z.number().int().positive(),
    record: z.unknown(),
  }),
);
export type RecordFile = z.infer<typeof recordFileSchema>;
