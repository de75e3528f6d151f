import { Kernel } from '@cr/core';
import { describe, expect, it } from 'vitest';

const blocks = new Kernel().connectionBlocks;

describe('ConnectionBlocks names', () => {
  it('names a block by both ends, an IPv6 address with _ for :, an IPv4-mapped one as IPv4', () => {
    expect(blocks.nameOf({ family: 'inet', address: '10.0.0.1', port: 80 }, { family: 'inet', address: '10.0.0.2', port: 40000 })).toBe('cr-tcp-10.0.0.1.80-10.0.0.2.40000');
    expect(blocks.nameOf({ family: 'inet6', address: '0:0:0:0:0:0:0:1', port: 80 }, { family: 'inet6', address: 'fe80:0:0:0:0:0:0:2', port: 9 })).toBe('cr-tcp-0_0_0_0_0_0_0_1.80-fe80_0_0_0_0_0_0_2.9');
    expect(blocks.nameOf({ family: 'inet6', address: '0:0:0:0:0:ffff:7f00:1', port: 80 }, { family: 'inet6', address: '0:0:0:0:0:ffff:a00:2', port: 9 })).toBe('cr-tcp-127.0.0.1.80-10.0.0.2.9');
  });

  it('lifts only names of its own blocks', () => {
    expect(() => blocks.lift('filter')).toThrow(/not the name of a connection block of cr/);
  });
});
