import { describe, expect, it } from 'vitest';
import { declareTypes, ffi, onFirstUse } from '../src/kernel/ffi.js';
import { capUserData, decodeStruct, encodeStruct, sockaddrUn, structSize, sunPathOffset, utsname } from '../src/kernel/structs.js';

describe('ffi', () => {
  it('declares the kernel layer\'s C types by name as koffi loads, with the layouts of x86_64', () => {
    const koffi = ffi();
    expect(koffi.sizeof(utsname)).toBe(6 * 65);
    expect(structSize(capUserData)).toBe(24);
    expect(sunPathOffset()).toBe(2);
    expect(structSize(sockaddrUn)).toBe(110);
    const bytes = encodeStruct(capUserData, [
      { effective: 1, permitted: 2, inheritable: 3 },
      { effective: 4, permitted: 5, inheritable: 6 },
    ]);
    expect([...new Uint32Array(bytes.buffer, bytes.byteOffset, 6)]).toEqual([1, 2, 3, 4, 5, 6]);
    expect(decodeStruct<Array<{ permitted: number }>>(bytes, capUserData)[1]!.permitted).toBe(5);
  });

  it('declares a type given after koffi loaded at once', () => {
    ffi();
    declareTypes((koffi) => koffi.struct('cr_test_late', { a: 'uint8_t', b: 'uint64_t' }));
    expect(structSize('cr_test_late')).toBe(16);
  });
});

describe('onFirstUse', () => {
  it('makes each member at its first use, once, and never one that is not used', () => {
    const made: string[] = [];
    const members = onFirstUse({
      one: () => (made.push('one'), 1),
      two: () => (made.push('two'), 2),
    });
    expect(made).toEqual([]);
    expect(members.one + members.one).toBe(2);
    expect(made).toEqual(['one']);
    expect(Object.keys(members)).toEqual(['one', 'two']);
  });
});
