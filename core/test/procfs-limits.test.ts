import { describe, expect, it } from 'vitest';
import { Kernel } from '../src/index.js';

const kernel = new Kernel();
const RLIM_NLIMITS = 16;

describe('Procfs.limits, on the real kernel', () => {
  it('reads every resource limit of a process as prlimit(2) reports it, unlimited as RLIM_INFINITY', () => {
    const limits = kernel.procfs.limits(process.pid);
    expect(limits).toHaveLength(RLIM_NLIMITS);
    limits.forEach((limit, resource) => expect(limit).toEqual(kernel.ownRlimit(resource)));
    expect(limits.some((l) => l.hard === 0xffff_ffff_ffff_ffffn)).toBe(true);
  });
});
