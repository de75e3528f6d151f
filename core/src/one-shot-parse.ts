/**
 * The parse options for a value cr checks once or a few times per command (a record, a manifest,
 * a config file): without zod's JIT, which compiles a fast path for each object schema on its
 * first parse (new Function) and pays off only over many parses of it. Compiling cost more than
 * parsing: about 15 ms of a restore's check of a small image, measured on the bench's process.
 */
export const ONE_SHOT = { jitless: true } as const;
