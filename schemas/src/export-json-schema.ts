import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { adviceSchema } from './advice.js';
import { configSchema } from './config.js';
import { manifestSchema } from './manifest.js';

/**
 * Writes JSON Schema files so editors can validate `.crrc.json` and tools can read images. Record
 * schemas belong to their plugins: scripts/export-record-schemas.js writes those of the loaded ones.
 */
const outDir = process.argv[2] ?? 'json';
const schemas: Record<string, z.ZodType> = {
  'crrc.schema.json': configSchema,
  'advice.schema.json': adviceSchema,
  'manifest.schema.json': manifestSchema,
};
mkdirSync(outDir, { recursive: true });
for (const [file, schema] of Object.entries(schemas)) {
  writeFileSync(join(outDir, file), JSON.stringify(z.toJSONSchema(schema, { io: 'input' }), null, 2) + '\n');
}
