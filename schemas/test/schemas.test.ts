import { COMPRESSED_IMAGE_FORMAT_VERSION, IMAGE_FORMAT_VERSION, INCREMENTAL_IMAGE_FORMAT_VERSION, PLAIN_IMAGE_FORMAT_VERSION, configSchema, manifestHeaderSchema, manifestSchema, policyRuleSchema, recordFileSchema } from '@cr/schemas';
import { describe, expect, it } from 'vitest';

describe('config schema', () => {
  it('takes types and single-object selections, and nothing else', () => {
    expect(configSchema.safeParse({ checkpoint: { exclude: ['sysvipc-shm'], include: ['sysvipc-shm:key=0x1234'] } }).success).toBe(true);
    expect(configSchema.safeParse({ checkpoint: { exclude: ['Not A Type'] } }).success).toBe(false);
    expect(configSchema.safeParse({ checkpoint: { only: ['sysvipc-shm:key=1'] } }).success).toBe(false);
    expect(configSchema.safeParse({ policy: { rules: [{ type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'include' }] } }).success).toBe(true);
    expect(configSchema.safeParse({ policy: { default: 'sometimes' } }).success).toBe(false);
  });
});

describe('manifest schema', () => {
  const manifest = {
    format: 'cr-image',
    formatVersion: 1,
    tool: { name: 'cr', version: '0.1.0' },
    createdAt: '2026-11-25T01:00:00.000Z',
    host: { kernelRelease: '6.18.0', arch: 'x64', hostname: 'box' },
    target: { kind: 'process', pid: 1234 },
    plugins: [{ type: 'uts-ns', version: 1, package: '@cr/plugin-uts-ns' }],
    objects: [
      {
        key: 'uts-ns:4026531838',
        type: 'uts-ns',
        id: '4026531838',
        parents: ['target:process:1234'],
        attributes: { inode: 4026531838 },
        policy: { decision: 'include', rule: 'default', source: 'default' },
        record: 'records/uts-ns/4026531838.json',
      },
      {
        key: 'sysvipc-shm:0',
        type: 'sysvipc-shm',
        id: '0',
        parents: [],
        attributes: { id: 0, key: 4660 },
        policy: { decision: 'external', rule: 'object sysvipc-shm key=0x1234', source: 'flag --external' },
      },
    ],
    files: {
      'records/uts-ns/4026531838.json': { size: 80, digest: `sha256:${'ab'.repeat(32)}` },
      'blobs/x/1/data.bin': { size: 0, digest: 'xxh3-64:0123456789abcdef' },
    },
  };
  const withChange = (change: (m: any) => void) => {
    const copy = structuredClone(manifest);
    change(copy);
    return manifestSchema.safeParse(copy);
  };

  it('accepts a manifest as the writer makes it, with an ipc-ns target too', () => {
    expect(manifestSchema.safeParse(manifest).success).toBe(true);
    expect(withChange((m) => (m.target = { kind: 'ipc-ns', path: '/run/cr/pins/ipc' })).success).toBe(true);
  });

  it.each<[string, (m: any) => void]>([
    ['another format', (m) => (m.format = 'criu')],
    ['format version 0', (m) => (m.formatVersion = 0)],
    ['a date that is not ISO', (m) => (m.createdAt = 'yesterday')],
    ['PID 0', (m) => (m.target = { kind: 'process', pid: 0 })],
    ['an unknown target kind', (m) => (m.target = { kind: 'net-ns', path: '/x' })],
    ['an md5 digest', (m) => (m.files['records/uts-ns/4026531838.json'].digest = `md5:${'ab'.repeat(16)}`)],
    ['a short sha256', (m) => (m.files['records/uts-ns/4026531838.json'].digest = 'sha256:abcd')],
    ['a negative size', (m) => (m.files['blobs/x/1/data.bin'].size = -1)],
    ['an unknown decision', (m) => (m.objects[0].policy.decision = 'maybe')],
    ['a bad type name', (m) => (m.objects[0].type = 'UTS')],
    ['an empty id', (m) => (m.objects[0].id = '')],
    ['an unknown key', (m) => (m.extra = true)],
    ['a missing files table', (m) => delete m.files],
  ])('rejects %s', (_what, change) => {
    expect(withChange(change).success).toBe(false);
  });

  it('the header schema reads only what decides whether an image is readable at all', () => {
    expect(manifestHeaderSchema.safeParse({ format: 'cr-image', formatVersion: 99, anything: 'else' }).success).toBe(true);
    expect(manifestHeaderSchema.safeParse({ format: 'other', formatVersion: 1 }).success).toBe(false);
    // Format 2 only adds compressed blobs and format 3 a parent image: an image with neither is still written as format 1.
    expect([IMAGE_FORMAT_VERSION, INCREMENTAL_IMAGE_FORMAT_VERSION, COMPRESSED_IMAGE_FORMAT_VERSION, PLAIN_IMAGE_FORMAT_VERSION]).toEqual([3, 3, 2, 1]);
  });
});

describe('record file envelope', () => {
  it('wraps any record with its type, id and version', () => {
    expect(recordFileSchema.safeParse({ type: 'uts-ns', id: '7', version: 1, record: { hostname: 'h' } }).success).toBe(true);
    expect(recordFileSchema.safeParse({ type: 'uts-ns', id: '7', version: 0, record: {} }).success).toBe(false);
    expect(recordFileSchema.safeParse({ type: 'uts-ns', id: '7', version: 1, record: {}, extra: 1 }).success).toBe(false);
    expect(recordFileSchema.safeParse({ type: 'uts-ns', version: 1, record: {} }).success).toBe(false);
  });
});

describe('config schema, rule shapes', () => {
  it('takes numeric and hex-string selector values, and rejects empty ones and fractions', () => {
    expect(policyRuleSchema.safeParse({ type: 'sysvipc-shm', match: { key: 4660 }, decision: 'include' }).success).toBe(true);
    expect(policyRuleSchema.safeParse({ type: 'sysvipc-shm', match: { key: '0x1234' }, decision: 'exclude' }).success).toBe(true);
    expect(policyRuleSchema.safeParse({ type: 'sysvipc-shm', match: { key: '' }, decision: 'exclude' }).success).toBe(false);
    expect(policyRuleSchema.safeParse({ type: 'sysvipc-shm', match: { key: 1.5 }, decision: 'exclude' }).success).toBe(false);
    expect(policyRuleSchema.safeParse({ type: 'sysvipc-shm', decision: 'include', extra: 1 }).success).toBe(false);
    expect(configSchema.safeParse({ plugins: [''] }).success).toBe(false);
    expect(configSchema.safeParse({ restore: { pinNs: '' } }).success).toBe(false);
    expect(configSchema.safeParse({}).success).toBe(true);
  });
});
