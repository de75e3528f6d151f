import { Kernel } from '@cr/core';
import { InetSocketsPlugin, inetSocketRecordSchema, type InetSocketRecord } from '@cr/plugin-inet-sockets';
import { describe, expect, it } from 'vitest';
import { recordCheckContext } from '../../../test/helpers/record-check.js';

const plugin = new InetSocketsPlugin(new Kernel());
const ctx = (blobSizes: Record<string, number> = {}) => recordCheckContext('inet-sockets:42:4', { parents: ['tasks:42'], blobSizes });
const end = (port: number) => ({ family: 'inet', address: '127.0.0.1', port }) as const;
const connection = { sendSeq: 10, sendQueue: 6, unsent: 2, receiveSeq: 4_000_000_000, receiveQueue: 3, mss: 65483, sack: true, window: { sndWl1: 1, sndWnd: 2, maxWindow: 3, rcvWnd: 4, rcvWup: 5 }, buffers: { send: 8192, receive: 8192 }, block: 'cr-tcp-127.0.0.1.5000-127.0.0.1.40000' };
const established = (over: Partial<InetSocketRecord> = {}) =>
  inetSocketRecordSchema.parse({ protocol: 'tcp', family: 'inet', state: 'established', local: end(5000), peer: end(40000), connection, options: {}, statusFlags: 0, fds: [{ fd: 4, closeOnExec: false }], ...over });

describe('inet-sockets checkRecord', () => {
  it('accepts an established connection whose queues are its blobs', () => {
    expect(plugin.checkRecord(established(), ctx({ 'send-queue': 6, 'receive-queue': 3 }))).toEqual([]);
  });

  it('names queue blobs that are missing or of another size, and a connection on a socket that is not established', () => {
    expect(plugin.checkRecord(established(), ctx({ 'send-queue': 5 })).length).toBeGreaterThan(0);
    expect(plugin.checkRecord(established({ state: 'bound' }), ctx({ 'send-queue': 6, 'receive-queue': 3 }))).toEqual(['only an established TCP socket, and every one, has a connection']);
    expect(plugin.checkRecord(established({ peer: undefined }), ctx({ 'send-queue': 6, 'receive-queue': 3 }))).toEqual(['an established connection is a TCP socket with a local and a peer address']);
  });

  it('refuses a block that is not one of cr\'s tables (restore runs nft with it)', () => {
    expect(inetSocketRecordSchema.safeParse({ ...established(), connection: { ...connection, block: 'filter; flush ruleset' } }).success).toBe(false);
  });
});
