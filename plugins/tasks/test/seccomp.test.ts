import { describe, expect, it } from 'vitest';
import { sharedSeccompFilters } from '../src/seccomp.js';

const filter = (name: string, log = false) => ({ program: Buffer.alloc(8, name).toString('base64'), log });
const A = filter('a');
const B = filter('b');
const C = filter('c');
const chain = (...filters: ReturnType<typeof filter>[]) => ({ mode: 'filter' as const, filters });

describe('the seccomp filters a restored process installs before making its threads (sharedSeccompFilters)', () => {
  it('a single thread: all of its filters, in order', () => {
    expect(sharedSeccompFilters([chain(A, B)])).toEqual([A, B]);
  });

  it('threads that share the first filters and add their own: only the shared ones', () => {
    expect(sharedSeccompFilters([chain(A, B), chain(A), chain(A, C)])).toEqual([A]);
    expect(sharedSeccompFilters([chain(A), chain(A, B)])).toEqual([A]);
  });

  it('nothing shared when a thread has none, is in strict mode, or starts with another filter', () => {
    expect(sharedSeccompFilters([chain(A), undefined])).toEqual([]);
    expect(sharedSeccompFilters([{ mode: 'strict' }, { mode: 'strict' }])).toEqual([]);
    expect(sharedSeccompFilters([chain(A, B), chain(B)])).toEqual([]);
  });

  it('the same program with another log flag is another filter', () => {
    expect(sharedSeccompFilters([chain(A), chain(filter('a', true))])).toEqual([]);
  });
});
