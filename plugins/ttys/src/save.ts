import type { Kernel, SaveContext } from '@cr/core';
import { ptyDescriptions, type PtyDescriptor } from './collect.js';
import type { PtyRecord } from './record.js';

/**
 * The record of pair `index` from the descriptors the processes of the checkpoint (`pids`) hold
 * on it, all frozen. Its state is read through a copy of the master; what the slave side wrote and
 * the master had not read is taken out and written back at once (a terminal cannot be peeked at),
 * so a process left running finds it where it was. Input the slave side had not read stays in the
 * terminal and is not saved: a warning says so.
 */
export async function savePty(kernel: Kernel, index: number, descriptors: readonly PtyDescriptor[], pids: readonly number[], ctx: SaveContext): Promise<PtyRecord> {
  const master = descriptors.find((d) => d.end.end === 'master')!;
  const slave = descriptors.find((d) => d.end.end === 'slave');
  const { ttys } = kernel;
  const read = kernel.withFdOf(master.pid, master.info.fd, (m, target) => {
    const state = ttys.state(m, target);
    if (!slave) {
      const unread = ttys.readable(m, target);
      if (unread > 0) ctx.warn(`pty ${index} (fd ${master.info.fd} of PID ${master.pid}): ${unread} byte(s) its closed slave side wrote are not saved; no process here holds the slave to give them back through`);
      return { state, exclusive: false, output: Buffer.alloc(0) };
    }
    return kernel.withFdOf(slave.pid, slave.info.fd, (s, slaveTarget) => {
      const typed = ttys.readable(s, slaveTarget);
      if (typed > 0) ctx.warn(`pty ${index}: ${typed} byte(s) written to the master and not yet read on the slave side are not saved; the restored terminal starts without them`);
      const output = ttys.takeOutput(m, state.packet, target);
      ttys.putOutput(m, s, state.termios, output, target);
      return { state, exclusive: ttys.exclusive(s, slaveTarget), output };
    });
  });
  const { state } = read;
  if (state.session !== 0 && !pids.includes(state.session)) {
    ctx.warn(`pty ${index} is the controlling terminal of session ${state.session}, whose leader is outside the checkpoint; the restored pty controls no session`);
  }
  if (read.output.length > 0) await ctx.writeBlob('output', read.output);
  return {
    kind: 'pty',
    index,
    termios: state.termios,
    winsize: state.winsize,
    locked: state.locked,
    packet: state.packet,
    exclusive: read.exclusive,
    session: state.session,
    foreground: state.foreground,
    output: read.output.length,
    descriptions: ptyDescriptions(kernel, descriptors).map(({ end, flags, holders }) => ({ end, flags, holders })),
  };
}
