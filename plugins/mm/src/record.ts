import { z } from 'zod';
import { base64Schema, intIdSchema, u64Schema, uidSchema } from '@cr/schemas';

/** What cr checks at restore that a mapped file is still the one the program had mapped. */
export const fileIdentitySchema = z.lazy(() =>
  z.strictObject({
    size: z.number().int().nonnegative(),
    mtimeNs: z.string().regex(/^[0-9]+$/),
  }),
);

export const vmaSchema = z.lazy(() =>
  z.strictObject({
    start: u64Schema,
    end: u64Schema,
    prot: z.number().int().min(0).max(7).describe('PROT_READ 1 | PROT_WRITE 2 | PROT_EXEC 4'),
    shared: z.boolean(),
    kind: z.enum(['anon', 'file', 'vdso', 'vvar', 'vvar_vclock', 'sysv-shm', 'shmem', 'aio']),
    name: z.string().optional().describe('"[heap]", "[stack]" …, for information'),
    path: z.string().optional().describe('the mapped file'),
    offset: u64Schema.optional().describe('file offset of start'),
    shmem: z.number().int().positive().optional().describe('the memfd or shared anonymous memory mapped here (shmem:INODE)'),
    file: fileIdentitySchema.optional().describe('of a file still on disk'),
    deleted: z.number().int().nonnegative().optional().describe('the mapped file had been deleted: it is deletedFiles[N] of the record, its contents the blob "deleted-N"'),
    shmid: intIdSchema.optional().describe('the SysV segment attached here'),
    aio: z.number().int().nonnegative().optional().describe('of the ring of an AIO context (io_setup) here, the program\'s aio_context_t: the blob "aio-N" holds its bytes'),
    flags: z.array(z.string().regex(/^[a-z]{2}$/)).describe('VmFlags from /proc/PID/smaps'),
  }),
);
export type VmaRecord = z.infer<typeof vmaSchema>;

export const mmRecordSchema = z.lazy(() => {
  const pageRunSchema = z.strictObject({ address: u64Schema, pages: z.number().int().positive() });
  return z.strictObject({
    vmas: z.array(vmaSchema),
    bounds: z.strictObject({
      startCode: u64Schema,
      endCode: u64Schema,
      startData: u64Schema,
      endData: u64Schema,
      startBrk: u64Schema,
      brk: u64Schema,
      startStack: u64Schema,
      argStart: u64Schema,
      argEnd: u64Schema,
      envStart: u64Schema,
      envEnd: u64Schema,
    }),
    auxv: base64Schema,
    exe: z.strictObject({
      path: z.string().startsWith('/'),
      file: fileIdentitySchema,
      deleted: z.number().int().nonnegative().optional().describe('the executable had been deleted (a program upgraded while it ran): it is deletedFiles[N]'),
    }),
    deletedFiles: z
      .array(
        z.strictObject({
          path: z.string().startsWith('/').describe('where it was, without " (deleted)"'),
          mode: z.number().int().min(0).max(0o7777),
          uid: uidSchema,
          gid: uidSchema,
          size: z.number().int().nonnegative(),
        }),
      )
      .optional()
      .describe('files the program mapped or ran that had been deleted (a library or binary replaced by an upgrade, a file unlinked once mapped): made again deleted, with the contents of the blob "deleted-N"'),
    pages: z
      .array(pageRunSchema)
      .describe('runs of 4 KiB pages, in the order their contents follow one another in the "pages" blob'),
    precopied: z
      .array(
        z.strictObject({
          blob: z.string().regex(/^precopy-[0-9]+$/),
          runs: z.array(pageRunSchema.extend({ stale: z.literal(true).optional().describe('written again after this copy: not restored from here') })),
        }),
      )
      .optional()
      .describe('pages copied while the process still ran (--pre-copy), one blob per round, runs in the order of its bytes; pages not stale are restored from here'),
    fromParent: z
      .array(pageRunSchema)
      .optional()
      .describe('pages unchanged since the parent image (an incremental image, --parent), restored from the same process there'),
  });
});
export type MmRecord = z.infer<typeof mmRecordSchema>;
