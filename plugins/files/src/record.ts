import { z } from 'zod';
import { descriptionHoldersSchema, intIdSchema, uidSchema } from '@cr/schemas';

export const filesRecordSchema = z.lazy(() => {
  const common = {
    fd: intIdSchema,
    closeOnExec: z.boolean(),
  };

  /** An open file: path, open flags (O_CLOEXEC aside) and position; maybe held by other processes too. */
  const opened = {
    ...common,
    holders: descriptionHoldersSchema,
    path: z.string().startsWith('/'),
    flags: z.number().int().nonnegative(),
    offset: z.string().regex(/^[0-9]+$/),
  };

  return z.discriminatedUnion('kind', [
    z.strictObject({ kind: z.literal('file'), ...opened, size: z.number().int().nonnegative().describe('at checkpoint, for information') }),
    z.strictObject({ kind: z.literal('directory'), ...opened }),
    z.strictObject({ kind: z.literal('device'), ...opened, rdev: z.number().int().nonnegative() }),
    z
      .strictObject({
        kind: z.literal('deleted'),
        ...opened,
        mode: z.number().int().min(0).max(0o7777),
        uid: uidSchema.optional().describe('owner; images of cr before 0.1 left it out'),
        gid: uidSchema.optional(),
        size: z.number().int().nonnegative(),
      })
      .describe('a regular file unlinked while open: its contents are in the "contents" blob'),
    z.strictObject({ kind: z.literal('duplicate'), ...common, of: intIdSchema }).describe('the same open file description as fd `of` (dup)'),
    z
      .strictObject({ kind: z.literal('inherited'), ...common, holders: descriptionHoldersSchema, flags: z.number().int().nonnegative(), description: z.string() })
      .describe('stdio pointing outside the checkpoint (a terminal, a pipe): given again at restore'),
  ]);
});
export type FilesRecord = z.infer<typeof filesRecordSchema>;
