import { closeSync, fstatSync, readSync, writeSync } from 'node:fs';
import { AF_INET6, AF_UNIX, Kernel, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, SOL_SOCKET, closeQueue } from '@cr/core';
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
      const seen = () => sockets.peekQueue(a, type, 'test').messages.map((m) => String(m.data));
      expect(seen()).toEqual(['one', 'two', 'three']);
      expect(seen()).toEqual(['one', 'two', 'three']);
      expect(sockets.intOption(a, SOL_SOCKET, SO_PEEK_OFF, 'test')).toBe(-1);
    }
    const [a, b] = keep(...sockets.pair(SOCK_STREAM, 'test'));
    expect(sockets.peekQueue(a, SOCK_STREAM, 'test')).toEqual({ messages: [] });
    sockets.send(b, Buffer.from('abc'), 'test');
    sockets.send(b, Buffer.from('def'), 'test');
    expect(sockets.peekQueue(a, SOCK_STREAM, 'test').messages.map((m) => String(m.data))).toEqual(['abcdef']);
  });

  it('peeks at descriptors in flight as copies of its own, message by message, and sends them again with credentials', () => {
    const SO_PASSCRED = 16;
    for (const type of [SOCK_STREAM, SOCK_SEQPACKET, SOCK_DGRAM]) {
      const [a, b] = keep(...sockets.pair(type, 'test'));
      const [r, w] = keep(...kernel.pipes.create({ data: Buffer.from('in the pipe'), capacity: 4096 }, 'test'));
      sockets.setIntOption(a, SOL_SOCKET, SO_PASSCRED, 1, 'test');
      sockets.send(b, Buffer.from('plain'), 'test');
      sockets.sendMessage(b, Buffer.from('with'), { fds: [r, w], credentials: { pid: process.pid, uid: 0, gid: 0 } }, 'test');
      sockets.send(b, Buffer.from('after'), 'test');
      const { messages } = sockets.peekQueue(a, type, 'test');
      try {
        const expected = type === SOCK_STREAM ? ['plainwith', 'after'] : ['plain', 'with', 'after'];
        expect(messages.map((m) => String(m.data))).toEqual(expected);
        expect(messages.map((m) => m.fds.length)).toEqual(expected.map((d) => (d.endsWith('with') ? 2 : 0)));
        expect(messages.every((m) => m.credentials?.pid === process.pid)).toBe(true);
        const carried = messages.find((m) => m.fds.length > 0)!;
        expect(kernel.sameOpenFile(process.pid, carried.fds[0]!, process.pid, r)).toBe(true);
        // The queue is untouched: read for real, the same descriptors come again.
        expect(sockets.peekQueue(a, type, 'test').messages.map((m) => String(m.data))).toEqual(expected);
      } finally {
        closeQueue({ messages });
      }
    }
  });

  it('sendMessage gives descriptors that work on the other side', () => {
    const [a, b] = keep(...sockets.pair(SOCK_SEQPACKET, 'test'));
    const [r, w] = keep(...kernel.pipes.create({ data: Buffer.alloc(0), capacity: 4096 }, 'test'));
    sockets.sendMessage(b, Buffer.from('x'), { fds: [w] }, 'test');
    const { messages } = sockets.peekQueue(a, SOCK_SEQPACKET, 'test');
    try {
      writeSync(messages[0]!.fds[0]!, 'through');
      const got = Buffer.alloc(16);
      expect(String(got.subarray(0, readSync(r, got)))).toBe('through');
    } finally {
      closeQueue({ messages });
    }
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
