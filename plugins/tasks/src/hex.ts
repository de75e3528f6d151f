/** 64-bit values travel through records as hex strings (see u64Schema). */
export const toHex = (v: bigint | number): string => `0x${BigInt.asUintN(64, BigInt(v)).toString(16)}`;
export const fromHex = (v: string): bigint => BigInt(v);
