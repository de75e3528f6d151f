import { declareStruct, encodeStruct } from './structs.js';

/** struct prctl_mm_map (linux/prctl.h), which PR_SET_MM_MAP takes. */
const prctlMmMap = declareStruct('cr_prctl_mm_map', {
  start_code: 'uint64_t',
  end_code: 'uint64_t',
  start_data: 'uint64_t',
  end_data: 'uint64_t',
  start_brk: 'uint64_t',
  brk: 'uint64_t',
  start_stack: 'uint64_t',
  arg_start: 'uint64_t',
  arg_end: 'uint64_t',
  env_start: 'uint64_t',
  env_end: 'uint64_t',
  auxv: 'uint64_t',
  auxv_size: 'uint32_t',
  exe_fd: 'uint32_t',
});

/** What PR_SET_MM_MAP sets of a process's mm at once: its bounds, auxv and exe link. */
export interface MmMap {
  startCode: bigint;
  endCode: bigint;
  startData: bigint;
  endData: bigint;
  startBrk: bigint;
  brk: bigint;
  startStack: bigint;
  argStart: bigint;
  argEnd: bigint;
  envStart: bigint;
  envEnd: bigint;
  auxv: Uint8Array;
  /** The task's descriptor of the new executable; undefined leaves the exe link as it is. */
  exeFd: number | undefined;
}

/** prctl_mm_map.exe_fd that leaves the exe link as it is. */
const NO_EXE_CHANGE = 0xffffffff;

/** The struct prctl(PR_SET_MM, PR_SET_MM_MAP) reads, for `map` whose auxv the task holds at `auxvAt`. */
export function mmMapStruct(map: MmMap, auxvAt: bigint): Buffer {
  return encodeStruct(prctlMmMap, {
    start_code: map.startCode,
    end_code: map.endCode,
    start_data: map.startData,
    end_data: map.endData,
    start_brk: map.startBrk,
    brk: map.brk,
    start_stack: map.startStack,
    arg_start: map.argStart,
    arg_end: map.argEnd,
    env_start: map.envStart,
    env_end: map.envEnd,
    auxv: auxvAt,
    auxv_size: map.auxv.byteLength,
    exe_fd: map.exeFd ?? NO_EXE_CHANGE,
  });
}
