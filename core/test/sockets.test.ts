import { closeSync, fstatSync } from 'node:fs';
import { AF_INET6, AF_UNIX, Kernel, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, SOL_SOCKET } from '@cr/core';
import { afterEach, describe, expect, it } from 'vitest';

const kernel = new Kernel();
const sockets = kernel.sockets;
const opened: number[] = [];
const keep = <T extends number[]>(...fds: T): T => (opened.push(...fds), fds);
afterEach(() => opened.splice(0).forEach((fd) => closeSync(fd)));
const SO_PEEK_OFF = 42;

describe('Sockets and SockDiag (real kernel)', () => {
  it('peeks at every queued message without taking it, and puts the peek offset back', () => {
    for (const type of [SOCK_DGRAM, SOCK_SEQPACKET]) {
      const [a, b] = keep(...sockets.pair(type, 'test'));
      for (const m of ['one', 'two', 'three']) sockets.send(b, Buffer.from(m), 'test');
      const seen = () => sockets.peekQueue(a, type, 'test').messages.map(String);
      expect(seen()).toEqual(['one', 'two', 'three']);
      expect(seen()).toEqual(['one', 'two', 'three']);
      expect(sockets.intOption(a, SOL_SOCKET, SO_PEEK_OFF, 'test')).toBe(-1);
    }
    const [a, b] = keep(...sockets.pair(SOCK_STREAM, 'test'));
    expect(sockets.peekQueue(a, SOCK_STREAM, 'test')).toEqual({ messages: [], withFds: false });
    sockets.send(b, Buffer.from('abc'), 'test');
    sockets.send(b, Buffer.from('def'), 'test');
    expect(sockets.peekQueue(a, SOCK_STREAM, 'test').messages.map(String)).toEqual(['abcdef']);
  });

  it('reads and writes addresses: IPv6 with its port, an abstract unix name', () => {
    const [udp] = keep(sockets.create({ family: AF_INET6, type: SOCK_DGRAM, protocol: 0 }, 'test'));
    sockets.bind(udp, { family: 'inet6', address: '0:0:0:0:0:0:0:1', port: 0 }, 'test');
    const bound = sockets.localAddress(udp, 'test');
    expect(bound).toMatchObject({ family: 'inet6', address: '0:0:0:0:0:0:0:1' });
    expect('port' in bound && bound.port > 0).toBe(true);
    const abstract = Buffer.from(`cr-test-${process.pid}`).toString('hex');
    const [named] = keep(sockets.create({ family: AF_UNIX, type: SOCK_STREAM, protocol: 0 }, 'test'));
    sockets.bind(named, { family: 'unix', abstract }, 'test');
    sockets.listen(named, 7, 'test');
    expect(sockets.localAddress(named, 'test')).toEqual({ family: 'unix', abstract });
    expect(sockets.peerAddress(named, 'test')).toBeUndefined();
    expect(kernel.sockDiag.unix().get(Number(fstatSync(named).ino))).toMatchObject({ state: 10, queued: 0, backlog: 7, peer: 0 });
  });

  it('sock_diag tells which unix socket is connected to which', () => {
    const [a, b] = keep(...sockets.pair(SOCK_STREAM, 'test'));
    const diag = kernel.sockDiag.unix();
    const [ia, ib] = [a, b].map((fd) => Number(fstatSync(fd).ino));
    expect(diag.get(ia!)).toMatchObject({ peer: ib, state: 1, type: SOCK_STREAM });
    expect(diag.get(ib!)).toMatchObject({ peer: ia });
  });
});
