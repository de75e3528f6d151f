import { closeSync, openSync } from 'node:fs';
import { makeDeletedFile, type RestoreContext } from '@cr/core';
import type { FilesRecord } from './record.js';

type DeletedRecord = Extract<FilesRecord, { kind: 'deleted' }>;

/** A file that was deleted while open comes back deleted (see makeDeletedFile), opened with the saved flags. */
export async function recreateDeleted(record: DeletedRecord, ctx: RestoreContext, who: string): Promise<number> {
  const fd = await makeDeletedFile(record, ctx.readBlob('contents'), who);
  try {
    return openSync(`/proc/self/fd/${fd}`, record.flags);
  } finally {
    closeSync(fd);
  }
}
