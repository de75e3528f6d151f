import { z } from 'zod';
import { policyRuleSchema, selectionSchema } from './config.js';

/**
 * What a running program advises about its own checkpoint (the kernel proposal's cradvise()),
 * as written by `cr advise PID …` or by the program itself into the advice directory
 * (docs/selecting.md). The same selections as a config file's `checkpoint.*`, and the same
 * structured rules as `policy.rules`.
 */
export const adviceSchema = z.lazy(() =>
  z.strictObject({
    include: z.array(selectionSchema).optional().describe('Save these types or objects even where a config rule leaves them out.'),
    exclude: z.array(selectionSchema).optional().describe('Leave these types or objects out.'),
    external: z.array(selectionSchema).optional().describe('Leave these out: the program uses them and they must exist at restore.'),
    rules: z.array(policyRuleSchema).optional().describe('Structured type and object rules, as policy.rules in a config file.'),
  }),
);
export type Advice = z.infer<typeof adviceSchema>;
