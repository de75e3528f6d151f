// The built modules: vitest does not compile TypeScript's .cts files.
import { createServer } from 'node:net';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceFor } from '../dist/service/client.cjs';
import { jsonLines } from '../dist/service/endpoint.cjs';

let dir: string;
let socket: string;
const server = createServer();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'cr-service-client-'));
  socket = join(dir, 'cr.sock');
  await new Promise<void>((ok) => server.listen(socket, ok));
});
afterAll(() => {
  server.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('serviceFor: which command lines the launcher hands to a service', () => {
  const env = () => ({ CR_SERVICE_SOCKET: socket });

  it('hands the commands the service runs, to a root-owned socket in a directory only root can change', () => {
    for (const argv of [['checkpoint', '1', '-D', 'img'], ['restore', '-D', 'img', '--detach'], ['inspect', 'ps', 'img'], ['types']]) expect(serviceFor(argv, env())).toBe(socket);
  });

  it('keeps help, --version, the commands it does not run, and everything under CR_NO_SERVICE', () => {
    for (const argv of [[], ['--version'], ['help'], ['checkpoint', '--help'], ['restore', '-h'], ['service', 'stop'], ['plugin', 'new', 'x'], ['autocomplete']]) expect(serviceFor(argv, env())).toBeUndefined();
    expect(serviceFor(['types'], { ...env(), CR_NO_SERVICE: '1' })).toBeUndefined();
  });

  it('keeps everything when there is no socket, when it is not a socket, or when others can write to its directory', () => {
    expect(serviceFor(['types'], { CR_SERVICE_SOCKET: join(dir, 'none.sock') })).toBeUndefined();
    const file = join(dir, 'file.sock');
    writeFileSync(file, '');
    expect(serviceFor(['types'], { CR_SERVICE_SOCKET: file })).toBeUndefined();
    const open = join(dir, 'open');
    mkdirSync(open);
    chmodSync(open, 0o777);
    const planted = createServer().listen(join(open, 'cr.sock'));
    try {
      expect(serviceFor(['types'], { CR_SERVICE_SOCKET: join(open, 'cr.sock') })).toBeUndefined();
    } finally {
      planted.close();
    }
  });
});

describe('jsonLines', () => {
  it('parses each whole line, however the chunks split them', () => {
    const seen: unknown[] = [];
    const take = jsonLines((m) => seen.push(m));
    take(Buffer.from('{"type":"rea'));
    take(Buffer.from('dy"}\n{"type":"exit","code":3}\n\n{"ty'));
    expect(seen).toEqual([{ type: 'ready' }, { type: 'exit', code: 3 }]);
    take(Buffer.from('pe":"stopping"}\n'));
    expect(seen).toEqual([{ type: 'ready' }, { type: 'exit', code: 3 }, { type: 'stopping' }]);
  });
});
