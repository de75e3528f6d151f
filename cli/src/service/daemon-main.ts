import { closeLogFile, createLogger } from '../logging/create-logger.js';
import { serve } from './server.js';

export interface DaemonOptions {
  socket: string;
  root: string;
  logFile?: string;
  run(argv: string[]): Promise<void>;
  ready(): void;
}

/** The cr service's process, as dist/service/daemon.cjs starts it: its log (one line per command, as JSON), then serve. */
export async function runDaemon(options: DaemonOptions): Promise<void> {
  const logger = await createLogger({ verbosity: 0, stderr: () => undefined, ...(options.logFile ? { file: options.logFile } : {}) });
  try {
    await serve({ socket: options.socket, root: options.root, run: options.run, logger, ready: options.ready });
  } finally {
    closeLogFile(logger);
  }
}
