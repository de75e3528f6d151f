import { Kernel } from '@cr/core';
import { UtsNsPlugin } from '@cr/plugin-uts-ns';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new UtsNsPlugin(new Kernel());

describe('uts-ns checkRecord', () => {
  it('counts the names in bytes, as the kernel holds them, where the schema counts characters', () => {
    const ctx = recordCheckContext('uts-ns:4026531838');
    expect(plugin.checkRecord({ hostname: 'x'.repeat(64), domainname: '' }, ctx)).toEqual([]);
    expect(plugin.checkRecord({ hostname: 'é'.repeat(33), domainname: 'ü'.repeat(40) }, ctx)).toEqual([
      "its hostname is longer than the kernel's 64 bytes",
      "its domainname is longer than the kernel's 64 bytes",
    ]);
  });
});
