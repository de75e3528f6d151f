import { utsNsRecordSchema } from '@cr/plugin-uts-ns';
import { describe, expect, it } from 'vitest';

describe('uts-ns record', () => {
  it('takes the two names as the kernel holds them, up to 64 bytes each', () => {
    expect(utsNsRecordSchema.safeParse({ hostname: 'box', domainname: '(none)' }).success).toBe(true);
    expect(utsNsRecordSchema.safeParse({ hostname: 'x'.repeat(64), domainname: '' }).success).toBe(true);
    expect(utsNsRecordSchema.safeParse({ hostname: 'x'.repeat(65), domainname: '' }).success).toBe(false);
    expect(utsNsRecordSchema.safeParse({ hostname: 'box' }).success).toBe(false);
  });
});
