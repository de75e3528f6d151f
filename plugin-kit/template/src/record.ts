import { z } from 'zod';

/** The highest bit of /proc/PID/coredump_filter the kernel knows (bit 8: dump DAX private pages). */
const FILTER_MAX = 0x1ff;

/**
 * What is saved of one process: the bit mask of /proc/PID/coredump_filter, which says what a core
 * dump of it would hold. A change to this schema must keep older images readable (add optional
 * fields), or raise the plugin's `version` with a reason. In z.lazy, it is built on its first
 * parse, not when cr starts: most commands never read a record of this type.
 */
export const recordSchema = z.lazy(() =>
  z.strictObject({
    filter: z.number().int().min(0).max(FILTER_MAX).describe('the coredump_filter bits'),
  }),
);
export type __CLASS__Record = z.infer<typeof recordSchema>;

/** The plugin's options: users give them in .crrc as `pluginOptions: { "__TYPE__": { … } }`. */
export const optionsSchema = z.lazy(() =>
  z.strictObject({
    override: z.number().int().min(0).max(FILTER_MAX).optional().describe('restore every process with this filter instead of the saved one'),
  }),
);
export type __CLASS__Options = z.infer<typeof optionsSchema>;
