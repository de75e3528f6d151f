// The cr service's process: `cr service start` runs node on this file, detached, with /dev/null
// as stdio and a pipe as descriptor 3, on which it says "ready" once its socket accepts callers,
// or why it could not start.
import { closeSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { loadBundle } from '../bundle-loader.cjs';
import { READY, READY_FD } from './endpoint.cjs';

const [socket, logFile] = process.argv.slice(2);
let reported = false;
const report = (text: string) => {
  if (reported) return;
  reported = true;
  try {
    writeSync(READY_FD, `${text}\n`);
    closeSync(READY_FD);
  } catch {
    // The starter has gone: nobody to tell.
  }
};
const root = join(__dirname, '..', '..');
loadBundle('service')
  .serve({ socket: socket!, root, ...(logFile ? { logFile } : {}), ready: () => report(READY) })
  .catch((err: Error & { exitCode?: number }) => {
    report(`cr: ${err.message}`);
    process.exitCode = err.exitCode ?? 1;
  });
