import { z } from 'zod';

/** A resource type name as plugins declare it: lower-case words joined by dashes. */
export const typeNameSchema = z
  .string()
  .regex(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/, 'a type name such as "uts-ns" or "sysvipc-shm"');

export const decisionSchema = z.enum(['include', 'exclude', 'external']);
export type Decision = z.infer<typeof decisionSchema>;

/**
 * Attribute values an object rule matches against (an shm id, a key, a path …).
 * Numbers may be written as strings so that hex keys ("0x1234") survive YAML and the CLI.
 */
export const selectorValueSchema = z.lazy(() => z.union([z.number().int(), z.string().min(1)]));

/**
 * A selection as flags and `checkpoint.include`/`exclude`/`external` write it: a type (or a group
 * of types: "sysvipc", "namespaces"), or that and one attribute, e.g. "sysvipc-shm",
 * "sysvipc-shm:key=0x1234", "sysvipc-msg:id=3", "files:path=/var/log/*", "namespaces:kind=ipc".
 */
export const selectionSchema = z.lazy(() =>
  z
    .string()
    .regex(
      /^[a-z][a-z0-9]*(-[a-z0-9]+)*(:[a-z][a-zA-Z0-9]*=[^\s,=]+)?$/,
      'a type such as "sysvipc-shm", or a type and selector such as "sysvipc-shm:key=0x1234" or "files:path=/var/log/*"',
    ),
);

export const policyRuleSchema = z.lazy(() =>
  z.strictObject({
    type: typeNameSchema.describe('Resource type the rule applies to, e.g. "sysvipc-shm".'),
    match: z
      .record(z.string().min(1), selectorValueSchema)
      .optional()
      .describe('Object attributes that must all be equal for the rule to apply; absent = every object of the type.'),
    decision: decisionSchema.describe('What happens to matching objects.'),
  }),
);
export type PolicyRule = z.infer<typeof policyRuleSchema>;

const checkpointSchema = z.lazy(() =>
  z.strictObject({
    only: z.array(typeNameSchema).optional().describe('Save only these resource types (or groups).'),
    include: z.array(selectionSchema).optional().describe('Save these types or objects even where another rule excludes them.'),
    exclude: z.array(selectionSchema).optional().describe('Leave these types or objects out.'),
    external: z
      .array(selectionSchema)
      .optional()
      .describe('Leave these types or objects out, as objects the program uses that must exist at restore.'),
  }),
);

const restoreSchema = z.lazy(() =>
  z.strictObject({
    pinNs: z.string().min(1).optional().describe('Directory where restored namespaces are pinned.'),
  }),
);

const policySchema = z.lazy(() =>
  z.strictObject({
    default: decisionSchema.optional().describe('Decision for objects no rule matches.'),
    rules: z.array(policyRuleSchema).optional().describe('Type and object rules; object rules win.'),
  }),
);

/** A named set of settings, applied over the rest of the file with `--profile NAME`. */
export const profileSchema = z.lazy(() =>
  z.strictObject({
    checkpoint: checkpointSchema.optional(),
    restore: restoreSchema.optional(),
    policy: policySchema.optional(),
  }),
);
export type CrProfile = z.infer<typeof profileSchema>;

export const profileNameSchema = z.lazy(() => z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'a profile name of letters, digits, ".", "_" and "-"'));

export const configSchema = z.lazy(() =>
  z.strictObject({
    $schema: z
      .string()
      .optional()
      .describe('The JSON Schema of this file, for editors: cr ships it as @cr/schemas/json/crrc.schema.json. cr itself ignores it.'),
    plugins: z
      .array(z.string().min(1))
      .optional()
      .describe('Extra plugin packages or paths to load, beside the built-in ones.'),
    pluginOptions: z
      .record(typeNameSchema, z.unknown())
      .optional()
      .describe("Options of plugins, by resource type, e.g. {\"coredump-filter\": {\"override\": 51}}; each is checked by its plugin's own schema when the plugin is loaded."),
    checkpoint: checkpointSchema.optional(),
    restore: restoreSchema.optional(),
    policy: policySchema.optional(),
    profiles: z
      .record(profileNameSchema, profileSchema)
      .optional()
      .describe('Named settings (checkpoint, restore, policy) that --profile NAME applies over the rest of the file.'),
  }),
);
export type CrConfig = z.infer<typeof configSchema>;
