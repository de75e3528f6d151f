import { z } from 'zod';

/** Value shapes that records of several types share. */

/** A 64-bit value (an address, a register, a signal set) as hex: JSON numbers stop at 2^53. */
export const u64Schema = z.string().regex(/^0x[0-9a-f]{1,16}$/, 'a 64-bit value in hex, e.g. "0x7ffd4a3c1000"');

export const base64Schema = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64 data');

/** PID_MAX_LIMIT on 64-bit: kernel.pid_max cannot be set higher. */
export const pidSchema = z.number().int().positive().max(4_194_304);

/** A uid or gid: 0 to 2^32-2. (uid_t)-1 is no id; the kernel reads it as "leave unchanged". */
export const uidSchema = z.number().int().min(0).max(0xffff_fffe);

/** A file descriptor number, or a SysV IPC id: a non-negative C int. */
export const intIdSchema = z.number().int().min(0).max(0x7fff_ffff);

/** One descriptor number of an open file description, and its close-on-exec flag. */
export const descriptorNumberSchema = z.strictObject({ fd: intIdSchema, closeOnExec: z.boolean() });

/**
 * The other processes that hold an open file description (inherited across fork: shared stdio, a
 * file whose offset parent and child move together), each with its descriptor numbers on it. The
 * description is saved once, with the first process that holds it, and given to all at restore.
 */
export const descriptionHoldersSchema = z
  .array(z.strictObject({ pid: pidSchema, fds: z.array(descriptorNumberSchema).min(1) }))
  .optional()
  .describe('other processes holding the same open file description; images before process trees left it out');
