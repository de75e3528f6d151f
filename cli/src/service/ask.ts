import { connect } from 'node:net';
import { jsonLines, type Reply, type Request } from './endpoint.cjs';

/** Sends one control request (status, stop) to the service at `socket`; resolves to its answer. */
export function askService(socket: string, request: Extract<Request, { type: 'status' | 'stop' }>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    conn.on('connect', () => conn.write(`${JSON.stringify(request)}\n`));
    conn.on(
      'data',
      jsonLines<Reply>((reply) => {
        conn.destroy();
        resolve(reply);
      }),
    );
    conn.on('error', reject);
    conn.on('close', () => reject(new Error(`the cr service at ${socket} closed the connection without answering`)));
  });
}
