// Writes a JSON Schema for the record of each type cr ships a plugin for, next to the config and
// manifest schemas (schemas/json/). The schemas come from the loaded plugins: each plugin owns its
// record format, so this list follows the built-in plugins with nothing to keep by hand.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PluginRegistry, createCrContainer, loadPlugins } from '@cr/core/engine';
import { BUILTIN_PLUGINS } from '@cr/api';
import { z } from 'zod';

const root = dirname(dirname(fileURLToPath(import.meta.url)));
const outDir = process.argv[2] ?? join(root, 'schemas', 'json');
const container = createCrContainer();
const registry = container.resolve(PluginRegistry);
await loadPlugins(BUILTIN_PLUGINS, [join(root, 'api')], container, registry);
mkdirSync(outDir, { recursive: true });
for (const { plugin } of registry.all()) {
  writeFileSync(join(outDir, `record.${plugin.type}.schema.json`), JSON.stringify(z.toJSONSchema(plugin.recordSchema, { io: 'input' }), null, 2) + '\n');
}
