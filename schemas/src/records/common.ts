import { z } from 'zod';

/** A 64-bit value (an address, a register, a signal set) as hex: JSON numbers stop at 2^53. */
export const u64Schema = z.string().regex(/^0x[0-9a-f]{1,16}$/, 'a 64-bit value in hex, e.g. "0x7ffd4a3c1000"');

export const base64Schema = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'base64 data');

export const pidSchema = z.number().int().positive();
