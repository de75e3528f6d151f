import { holdersField } from '@cr/descriptor-base';
import { NETLINK_FLAG_OPTIONS, type NetlinkFlagOption } from '@cr/core';
import { z } from 'zod';

const u32 = z.number().int().min(0).max(0xffff_ffff);

/** A netlink socket: its kind, what it is bound and connected to, its options, and the descriptors of the process on it. */
export const netlinkSocketRecordSchema = z.lazy(() =>
  z.strictObject({
    type: z.enum(['raw', 'dgram']).describe('SOCK_RAW or SOCK_DGRAM (netlink treats them alike)'),
    protocol: z.number().int().min(0).max(31).describe('NETLINK_ROUTE (0), NETLINK_AUDIT (9), NETLINK_KOBJECT_UEVENT (15) …'),
    portid: u32.describe('the port id it is bound to (nl_pid), 0 while it is not bound: restored on the same one, which must be free'),
    groups: z.array(z.number().int().min(1).max(0xffff_ffff)).describe('the multicast groups it listens to, by number'),
    peer: z.strictObject({ portid: u32, groups: u32 }).optional().describe('where connect(2) pointed it: a port id and a group mask'),
    options: z.array(z.enum(Object.keys(NETLINK_FLAG_OPTIONS) as [NetlinkFlagOption, ...NetlinkFlagOption[]])).describe('the SOL_NETLINK options that are on'),
    buffers: z.strictObject({ send: z.number().int().nonnegative(), receive: z.number().int().nonnegative() }).describe('SO_SNDBUF and SO_RCVBUF as getsockopt shows them'),
    statusFlags: z.number().int().nonnegative().describe('O_NONBLOCK …'),
    fds: z.array(z.strictObject({ fd: z.number().int().min(0).max(0x7fff_ffff), closeOnExec: z.boolean() })).min(1),
    ...holdersField,
  }),
);
export type NetlinkSocketRecord = z.infer<typeof netlinkSocketRecordSchema>;
