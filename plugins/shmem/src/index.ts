import { MemfdPlugin } from './memfd-plugin.js';
import { ShmemPlugin } from './shmem-plugin.js';

export { SHMEM, ShmemPlugin, RestoredShmem, missingShmem } from './shmem-plugin.js';
export { MemfdPlugin, type MemfdHandle } from './memfd-plugin.js';
export { shmemOfVma, shmemOfFd, type ShmemKind, type ShmemSource } from './collect.js';
export { shmemRecordSchema, memfdRecordSchema, type ShmemRecord, type MemfdRecord } from './record.js';

export default [ShmemPlugin, MemfdPlugin];
