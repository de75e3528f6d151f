import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { parse } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, cr, crJson, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** The schema as a package that depends on @cr/schemas finds it, through its exports. */
const schemaPath = createRequire(join(REPO, 'cli', 'package.json')).resolve('@cr/schemas/json/crrc.schema.json');
const validate = new Ajv2020({ strict: false }).compile(JSON.parse(readFileSync(schemaPath, 'utf8')));

describe('the config JSON Schema shipped in @cr/schemas', () => {
  it('is listed in the package (files and exports)', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'schemas', 'package.json'), 'utf8'));
    expect(pkg.files).toContain('json');
    expect(schemaPath).toBe(join(REPO, 'schemas', 'json', 'crrc.schema.json'));
  });

  it('validates .crrc.example, which names it on its first line', () => {
    const text = readFileSync(join(REPO, '.crrc.example'), 'utf8');
    expect(text.split('\n')[0]).toBe('# yaml-language-server: $schema=schemas/json/crrc.schema.json');
    const example = parse(text);
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
    expect(example.policy.rules.length).toBeGreaterThan(0);
  });

  it('refuses what cr refuses: an unknown key, a wrong decision, a bad selection', () => {
    for (const bad of [{ polcy: {} }, { policy: { default: 'maybe' } }, { checkpoint: { exclude: ['sysvipc shm'] } }]) {
      expect(validate(bad), JSON.stringify(bad)).toBe(false);
      const dir = cleanup.dir(tempDir());
      writeFileSync(join(dir, '.crrc.json'), JSON.stringify(bad));
      expect(cr(['config'], dir).status).toBe(3);
    }
  });
});

describe('a "$schema" key in a config file', () => {
  it('is accepted, and the rest of the file applies', () => {
    const dir = cleanup.dir(tempDir());
    const file = { $schema: schemaPath, checkpoint: { exclude: ['sysvipc-sem'] } };
    expect(validate(file)).toBe(true);
    writeFileSync(join(dir, '.crrc.json'), JSON.stringify(file));
    const shown = crJson<{ config: { checkpoint: { exclude: string[] } }; sources: Record<string, string> }>(['config'], dir);
    expect(shown.config.checkpoint.exclude).toEqual(['sysvipc-sem']);
    expect(shown.sources['checkpoint.exclude']).toBe(`file ${join(dir, '.crrc.json')}`);
  });

  it('must be a string', () => {
    const dir = cleanup.dir(tempDir());
    writeFileSync(join(dir, '.crrc.json'), JSON.stringify({ $schema: 5 }));
    const r = cr(['config'], dir);
    expect(r.status).toBe(3);
    expect(r.stderr).toContain('"$schema"');
  });
});
