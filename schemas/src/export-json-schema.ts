import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { adviceSchema } from './advice.js';
import { configSchema } from './config.js';
import { manifestSchema } from './manifest.js';
import { ipcNsRecordSchema } from './records/ipc-ns.js';
import { msgRecordSchema, semRecordSchema, shmRecordSchema } from './records/sysvipc.js';
import { utsNsRecordSchema } from './records/uts-ns.js';
import { tasksRecordSchema } from './records/tasks.js';
import { mmRecordSchema } from './records/mm.js';
import { filesRecordSchema } from './records/files.js';

/** Writes JSON Schema files so editors can validate `.crrc.json` and tools can read images. */
const outDir = process.argv[2] ?? 'json';
const schemas: Record<string, z.ZodType> = {
  'crrc.schema.json': configSchema,
  'advice.schema.json': adviceSchema,
  'manifest.schema.json': manifestSchema,
  'record.uts-ns.schema.json': utsNsRecordSchema,
  'record.ipc-ns.schema.json': ipcNsRecordSchema,
  'record.sysvipc-shm.schema.json': shmRecordSchema,
  'record.sysvipc-msg.schema.json': msgRecordSchema,
  'record.sysvipc-sem.schema.json': semRecordSchema,
  'record.tasks.schema.json': tasksRecordSchema,
  'record.mm.schema.json': mmRecordSchema,
  'record.files.schema.json': filesRecordSchema,
};
mkdirSync(outDir, { recursive: true });
for (const [file, schema] of Object.entries(schemas)) {
  writeFileSync(join(outDir, file), JSON.stringify(z.toJSONSchema(schema, { io: 'input' }), null, 2) + '\n');
}
