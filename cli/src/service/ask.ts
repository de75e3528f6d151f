import { connect } from 'node:net';
import { jsonLines, type Reply, type Request } from './endpoint.cjs';

/**
 * Sends one control request (status, stop) to the service at `socket`; resolves to its answer.
 * A service that does not answer within `ms` (a stopped one, say) counts as none.
 */
export function askService(socket: string, request: Extract<Request, { type: 'status' | 'stop' }>, ms = 5000): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const conn = connect(socket);
    conn.setTimeout(ms, () => {
      conn.destroy();
      reject(new Error(`the cr service at ${socket} did not answer within ${ms / 1000} s`));
    });
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

/** What the service at `socket` says of itself, or undefined when no service answers there. */
export async function serviceStatus(socket: string): Promise<Extract<Reply, { type: 'status' }> | undefined> {
  const reply = await askService(socket, { type: 'status' }).catch(() => undefined);
  return reply?.type === 'status' ? reply : undefined;
}
