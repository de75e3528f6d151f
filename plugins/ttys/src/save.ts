import type { Kernel, SaveContext } from '@cr/core';
import { ptyDescriptions, type PtyDescriptor } from './collect.js';
import type { PtyRecord } from './record.js';

/**
 * The record of pair `index` from the descriptors the processes of the checkpoint (`pids`) hold
 * on it, all frozen. Its state is read through a copy of the master; what was typed into the
 * master and the slave side had not read, and what the slave side wrote and the master had not
 * read, are taken out and given back at once (a terminal cannot be peeked at), so a process left
 * running finds them where they were. The input is taken first: taking it has the kernel finish
 * handling what was typed, whose echo is then output like the rest.
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
      return { state, exclusive: false, output: Buffer.alloc(0), input: Buffer.alloc(0) };
    }
    return kernel.withFdOf(slave.pid, slave.info.fd, (s, slaveTarget) => {
      const input = ttys.takeInput(m, s, state.termios, slaveTarget);
      let output: Buffer = Buffer.alloc(0);
      let anew = 0;
      try {
        output = ttys.takeOutput(m, state.packet, target);
        ttys.putOutput(m, s, state.termios, output, target);
      } finally {
        anew = ttys.putInput(m, s, state.termios, input, slaveTarget);
      }
      if (anew > 0) {
        ctx.warn(`pty ${index}: ${anew} byte(s) typed into it beyond what its line discipline holds come back as typed anew, after the rest (echoed and processed by the terminal settings again)`);
      }
      return { state, exclusive: ttys.exclusive(s, slaveTarget), output, input };
    });
  });
  const { state } = read;
  if (state.session !== 0 && !pids.includes(state.session)) {
    ctx.warn(`pty ${index} is the controlling terminal of session ${state.session}, whose leader is outside the checkpoint; the restored pty controls no session`);
  }
  if (read.output.length > 0) await ctx.writeBlob('output', read.output);
  if (read.input.length > 0) await ctx.writeBlob('input', read.input);
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
    ...(read.input.length > 0 ? { input: read.input.length } : {}),
    descriptions: ptyDescriptions(kernel, descriptors).map(({ end, flags, holders }) => ({ end, flags, holders })),
  };
}
