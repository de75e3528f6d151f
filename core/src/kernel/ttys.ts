import { closeSync, existsSync, openSync, readSync, statSync, writeSync } from 'node:fs';
import { O_NOCTTY, O_RDWR } from 'node:constants';
import { TargetError } from '../errors.js';
import { KernelError } from './kernel-error.js';
import type { Libc } from './libc.js';
import type { Procfs } from './procfs.js';
import type { RemoteTask } from './remote-task.js';
import { decodeStruct, encodeStruct, structSize, termios2, winsize } from './structs.js';
import { O_CLOEXEC } from './syscalls.js';
import { nodeFsError } from './sysctl.js';

/** ioctl request numbers of asm-generic/ioctls.h (x86_64). */
const TCGETS2 = 0x802c542a;
const TCSETS2 = 0x402c542b;
const TIOCEXCL = 0x540c;
const TIOCSCTTY = 0x540e;
const TIOCSPGRP = 0x5410;
const TIOCSTI = 0x5412;
const TIOCGWINSZ = 0x5413;
const TIOCSWINSZ = 0x5414;
const SYS_IOCTL = { name: 'ioctl', nr: 16 };
const FIONREAD = 0x541b;
const TIOCPKT = 0x5420;
const TIOCGSID = 0x5429;
const TIOCGPGRP = 0x540f;
const TIOCGPTN = 0x80045430;
const TIOCSPTLCK = 0x40045431;
const TIOCGPKT = 0x80045438;
const TIOCGPTLCK = 0x80045439;
const TIOCGEXCL = 0x80045440;
const TIOCGPTPEER = 0x5441;
const OPOST = 0o1;
const ENOTTY = 25;
const POLLIN = 0x1;
const POLLOUT = 0x4;
const POLLERR = 0x8;
const POLLHUP = 0x10;
const EAGAIN = 11;

/** termios c_iflag bits that change or drop received bytes, or ring on a full queue (asm-generic/termbits.h). */
const PARMRK = 0o10;
const ISTRIP = 0o40;
const INLCR = 0o100;
const IGNCR = 0o200;
const ICRNL = 0o400;
const IUCLC = 0o1000;
const IMAXBEL = 0o20000;

/** termios c_lflag bits. */
const ISIG = 0o1;
const ICANON = 0o2;
const ECHO = 0o10;
const ECHONL = 0o100;

/** Indexes in c_cc. */
const VINTR = 0;
const VQUIT = 1;
const VERASE = 2;
const VKILL = 3;
const VEOF = 4;
const VTIME = 5;
const VMIN = 6;
const VSUSP = 10;
const VEOL = 11;
const VREPRINT = 12;
const VDISCARD = 13;
const VWERASE = 14;
const VLNEXT = 15;
const VEOL2 = 16;
/** A control character set to this is disabled (_POSIX_VDISABLE). */
const DISABLED = 0;

/** What the line discipline (N_TTY) holds for its reader: N_TTY_BUF_SIZE less one. */
const LINE_DISCIPLINE_ROOM = 4095;

/**
 * What one write into a pty is at most when given back: a write no larger than a tty buffer
 * (TTY_BUFFER_PAGE, about 1.7 KiB) goes in whole whenever poll says POLLOUT, so it never waits.
 */
const GIVE_BACK_PIECE = 256;
/** How long cr waits in all for a pty to take back bytes it gives back, before it gives up with an error rather than hang. */
const GIVE_BACK_MS = 5000;

/** Device numbers: /dev/ptmx is 5:2; the Unix98 slaves are majors 136-143 (linux/major.h). */
const TTYAUX_MAJOR = 5;
const PTMX_MINOR = 2;
const UNIX98_PTY_SLAVE_MAJOR = 136;
const UNIX98_PTY_MAJOR_COUNT = 8;

/** The terminal settings (struct termios2: flags, line discipline, control characters, speeds). */
export interface Termios {
  iflag: number;
  oflag: number;
  cflag: number;
  lflag: number;
  line: number;
  cc: number[];
  ispeed: number;
  ospeed: number;
}

export interface WindowSize {
  rows: number;
  cols: number;
  xpixel: number;
  ypixel: number;
}

/** What a pseudo-terminal pair is, as its master shows it. */
export interface PtyState {
  termios: Termios;
  winsize: WindowSize;
  /** TIOCSPTLCK: the slave cannot be opened. */
  locked: boolean;
  /** TIOCPKT: reads from the master carry a status byte. */
  packet: boolean;
  /** The session whose controlling terminal it is (0: none). */
  session: number;
  /** Its foreground process group (0: none). */
  foreground: number;
}

/** A descriptor on a Unix98 pseudo-terminal: its master (/dev/ptmx) or a slave (/dev/pts/N), and the pair's index N. */
export interface PtyEnd {
  end: 'master' | 'slave';
  index: number;
  /** For a slave, the device of the devpts instance it is on (st_dev). */
  devpts?: bigint;
}

/** Pseudo-terminals: what a pair is and holds, read through a master; new pairs with a chosen index. */
export class Ttys {
  constructor(
    private readonly libc: Libc,
    private readonly procfs: Procfs,
  ) {}

  /** The pty index of a Unix98 slave's device number (st_rdev, or tty_nr of /proc/PID/stat); undefined for any other device. */
  slaveIndex(rdev: bigint): number | undefined {
    const major = Number((rdev >> 8n) & 0xfffn);
    const minor = Number((rdev & 0xffn) | ((rdev >> 12n) & 0xfff00n));
    if (major < UNIX98_PTY_SLAVE_MAJOR || major >= UNIX98_PTY_SLAVE_MAJOR + UNIX98_PTY_MAJOR_COUNT) return undefined;
    return (major - UNIX98_PTY_SLAVE_MAJOR) * 256 + minor;
  }

  /** Whether descriptor `fd` of `pid` is a pty master or slave (by its device number), and of which pair; undefined for any other file. */
  ptyEnd(pid: number, fd: number): PtyEnd | undefined {
    let st;
    try {
      st = statSync(`/proc/${pid}/fd/${fd}`, { bigint: true });
    } catch {
      return undefined;
    }
    if (!st.isCharacterDevice()) return undefined;
    const major = Number((st.rdev >> 8n) & 0xfffn);
    const minor = Number((st.rdev & 0xffn) | ((st.rdev >> 12n) & 0xfff00n));
    if (major === TTYAUX_MAJOR && minor === PTMX_MINOR) {
      const index = this.procfs.fdinfo(pid, fd)['tty-index'];
      return index === undefined ? undefined : { end: 'master', index: Number(index) };
    }
    const index = this.slaveIndex(st.rdev);
    return index === undefined ? undefined : { end: 'slave', index, devpts: st.dev };
  }

  /** The device of the devpts instance mounted at /dev/pts, where new pairs are made. */
  devptsDevice(): bigint {
    return statSync('/dev/pts', { bigint: true }).dev;
  }

  /** The index N of the pair `master` (cr's descriptor on a master) is the master of: its slave is /dev/pts/N. */
  index(master: number, target: string): number {
    return this.libc.ioctlInt(master, TIOCGPTN, 'ioctl(TIOCGPTN)', target);
  }

  /** Whether pair `index` exists in /dev/pts. */
  inUse(index: number): boolean {
    return existsSync(`/dev/pts/${index}`);
  }

  /** The pair's state, read through `master` (a descriptor of cr's on its master): the ioctls on a master act on the slave side. */
  state(master: number, target: string): PtyState {
    const t = decodeStruct<{ c_iflag: number; c_oflag: number; c_cflag: number; c_lflag: number; c_line: number; c_cc: number[]; c_ispeed: number; c_ospeed: number }>(
      this.get(master, TCGETS2, structSize(termios2), 'ioctl(TCGETS2)', target),
      termios2,
    );
    const w = decodeStruct<{ ws_row: number; ws_col: number; ws_xpixel: number; ws_ypixel: number }>(this.get(master, TIOCGWINSZ, structSize(winsize), 'ioctl(TIOCGWINSZ)', target), winsize);
    return {
      termios: { iflag: t.c_iflag, oflag: t.c_oflag, cflag: t.c_cflag, lflag: t.c_lflag, line: t.c_line, cc: [...t.c_cc], ispeed: t.c_ispeed, ospeed: t.c_ospeed },
      winsize: { rows: w.ws_row, cols: w.ws_col, xpixel: w.ws_xpixel, ypixel: w.ws_ypixel },
      locked: this.libc.ioctlInt(master, TIOCGPTLCK, 'ioctl(TIOCGPTLCK)', target) !== 0,
      packet: this.libc.ioctlInt(master, TIOCGPKT, 'ioctl(TIOCGPKT)', target) !== 0,
      session: this.orZeroWithoutSession(() => this.libc.ioctlInt(master, TIOCGSID, 'ioctl(TIOCGSID)', target)),
      foreground: this.orZeroWithoutSession(() => this.libc.ioctlInt(master, TIOCGPGRP, 'ioctl(TIOCGPGRP)', target)),
    };
  }

  /** Whether the terminal of descriptor `fd` is in exclusive mode (TIOCEXCL). */
  exclusive(fd: number, target: string): boolean {
    return this.libc.ioctlInt(fd, TIOCGEXCL, 'ioctl(TIOCGEXCL)', target) !== 0;
  }

  /** The bytes that a read of descriptor `fd` would find now (FIONREAD). */
  readable(fd: number, target: string): number {
    return this.libc.ioctlInt(fd, FIONREAD, 'ioctl(FIONREAD)', target);
  }

  /**
   * Takes out what the slave side wrote and nobody read from the master yet: reads `master`
   * while FIONREAD says there is something, so no read ever waits. In packet mode each read
   * starts with a status byte, which is left out (a pending status alone is dropped). A pty
   * carries what is written to one side to the other's line discipline later, in a kernel
   * worker, and FIONREAD counts only what has arrived; before each FIONREAD a poll has the
   * kernel finish that carrying (n_tty_poll flushes it when nothing has arrived).
   */
  takeOutput(master: number, packet: boolean, target: string): Buffer {
    return this.takeArrived(master, packet, target);
  }

  /**
   * Takes out what was typed into the master and the slave side has not read, as it would be
   * typed again. Not in canonical mode, reads of exactly what FIONREAD counts (after a poll has
   * the kernel carry over what the pty still holds, see takeOutput), so no read waits and the
   * settings stay as they are. In canonical mode the whole lines first, one a read once poll
   * says one is there (a line ended by VEOF comes without it and gets it back, an empty read is
   * VEOF alone), then with the pair briefly non-canonical and not waiting (VMIN 0, VTIME 0) the
   * line being edited; `termios` is what the pair is set to again after.
   */
  takeInput(master: number, slave: number, termios: Termios, target: string): Buffer {
    if (!(termios.lflag & ICANON)) return this.takeArrived(slave, false, target);
    const chunks: Buffer[] = [];
    const buf = Buffer.alloc(LINE_DISCIPLINE_ROOM + 1);
    while (this.libc.poll(slave, POLLIN, 0, target) & POLLIN) {
      const got = readSync(slave, buf, 0, buf.length, null);
      chunks.push(Buffer.from(buf.subarray(0, got)));
      if (got === 0 || !endsLine(buf[got - 1]!, termios)) chunks.push(Buffer.of(termios.cc[VEOF]!));
    }
    this.withTermios(master, termios, { ...termios, lflag: termios.lflag & ~ICANON, cc: withCc(termios.cc, [VMIN, VTIME], 0) }, target, () => {
      for (let got = readSync(slave, buf, 0, buf.length, null); got > 0; got = readSync(slave, buf, 0, buf.length, null)) chunks.push(Buffer.from(buf.subarray(0, got)));
    });
    return Buffer.concat(chunks);
  }

  /**
   * Gives `data` (from takeInput) back to the slave side's reader: put into its line discipline
   * one byte a call (TIOCSTI, at once, where a write to the master is carried later), under
   * settings that neither echo nor change the bytes a second time and, in canonical mode, make
   * the same lines again (echo, signals, byte-changing input processing and the editing
   * characters off; flow control kept, whose change a master in packet mode would be told of).
   * The settings are changed for the moment only when they differ from those. What does not fit
   * in the line discipline is written to the master after, as if typed anew, without ever
   * waiting long (see writeBack): how many bytes that was is returned.
   */
  putInput(master: number, slave: number, termios: Termios, data: Uint8Array, target: string): number {
    if (data.length === 0) return 0;
    const fits = Math.min(data.length, LINE_DISCIPLINE_ROOM);
    this.withTermios(master, termios, quietInput(termios), target, () => {
      this.insertInput(slave, data.subarray(0, fits), target);
    });
    this.writeBack(master, data.subarray(fits), 'typed input', target);
    return data.length - fits;
  }

  /** Puts `data` into the line discipline `fd` reads from, one byte an ioctl(TIOCSTI), at once: nothing waits. */
  private insertInput(fd: number, data: Uint8Array, target: string): void {
    for (let at = 0; at < data.length; at++) this.libc.ioctlPointer(fd, TIOCSTI, data.subarray(at, at + 1), 'ioctl(TIOCSTI)', target);
  }

  /**
   * Reads `fd` while bytes have arrived for it (see arrived), so that no read waits; with
   * `statusByte` (a master in packet mode), each read's leading status byte is left out.
   */
  private takeArrived(fd: number, statusByte: boolean, target: string): Buffer {
    const chunks: Buffer[] = [];
    for (let n = this.arrived(fd, target); n > 0; n = this.arrived(fd, target)) {
      const chunk = Buffer.alloc(n + (statusByte ? 1 : 0));
      const got = readSync(fd, chunk, 0, chunk.length, null);
      chunks.push(statusByte ? chunk.subarray(1, got) : chunk.subarray(0, got));
    }
    return Buffer.concat(chunks);
  }

  /** The bytes that have arrived for a reader of `fd`, once the kernel has carried over what the pty held (see takeOutput). */
  private arrived(fd: number, target: string): number {
    this.libc.poll(fd, POLLIN, 0, target);
    return this.readable(fd, target);
  }

  /**
   * Puts `data` (from takeOutput) back where the master reads it, in order: what the master's
   * line discipline has room for straight into it (TIOCSTI on the master, whose own settings are
   * always raw, so nothing is changed and nothing waits), the rest written to `slave` as written
   * by the slave side, into the pty's buffers behind it, without ever waiting long (see
   * writeBack), with output processing (OPOST) off for the moment if it is on, since the bytes
   * were processed when first written; `termios` is the pair's settings.
   */
  putOutput(master: number, slave: number, termios: Termios, data: Uint8Array, target: string): void {
    const held = this.readable(master, target);
    const fits = Math.min(data.length, Math.max(0, LINE_DISCIPLINE_ROOM - held));
    this.insertInput(master, data.subarray(0, fits), target);
    const now = this.readable(master, target);
    if (now !== held + fits) {
      throw new TargetError(`${target}: ${held + fits - now} of ${data.length} byte(s) of the output its master had not read could not be given back (its line discipline took ${now - held} of ${fits}); the program goes on without them`);
    }
    if (fits === data.length) return;
    this.withTermios(master, termios, { ...termios, oflag: termios.oflag & ~OPOST }, target, () => this.writeBack(slave, data.subarray(fits), 'output its master had not read', target));
  }

  /**
   * Writes `data` to `fd`, a pty end, in pieces each written once poll says there is room, so
   * that no write waits (a pty whose other side is stopped never makes room, and a write that
   * waits for it would never return); gives up after GIVE_BACK_MS in all with an error saying
   * how much did not go back.
   */
  private writeBack(fd: number, data: Uint8Array, what: string, target: string): void {
    const deadline = Date.now() + GIVE_BACK_MS;
    let at = 0;
    while (at < data.length) {
      const left = deadline - Date.now();
      const events = left > 0 ? this.libc.poll(fd, POLLOUT, Math.min(left, 100), target) : 0;
      if (events & (POLLERR | POLLHUP) || (!(events & POLLOUT) && left <= 0)) {
        throw new TargetError(`${target}: ${data.length - at} byte(s) of the ${what} could not be given back within ${GIVE_BACK_MS / 1000} s (the pty took no more; is a process outside the checkpoint using it?); the program goes on without them`);
      }
      if (events & POLLOUT) at += this.writeSome(fd, data.subarray(at, at + GIVE_BACK_PIECE), target);
    }
  }

  /** write(2) of `piece` to `fd` (which may be non-blocking): the bytes written, 0 on EAGAIN. */
  private writeSome(fd: number, piece: Uint8Array, target: string): number {
    try {
      return writeSync(fd, piece);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).errno === -EAGAIN) return 0;
      throw nodeFsError('write', target, err);
    }
  }

  /** Runs `use` with the pair set to `during` (through `master`) when that differs from `termios`, which it is set to again after, however `use` ends. */
  private withTermios<T>(master: number, termios: Termios, during: Termios, target: string, use: () => T): T {
    if (sameTermios(termios, during)) return use();
    this.setTermios(master, during, target);
    try {
      return use();
    } finally {
      this.setTermios(master, termios, target);
    }
  }

  /**
   * A new pair with exactly index `index`, as cr's descriptor on its master (locked, as every new
   * pair is). The kernel gives the lowest free index: cr opens pairs until it gets `index`, and
   * closes the others; when a pair with a higher index comes first, `index` is taken.
   */
  openPty(index: number, target: string): number {
    const others: number[] = [];
    try {
      for (;;) {
        const master = openSync('/dev/ptmx', O_RDWR | O_NOCTTY | O_CLOEXEC);
        const got = this.index(master, target);
        if (got === index) return master;
        others.push(master);
        if (got > index) throw new TargetError(`cannot restore ${target}: /dev/pts/${index} is taken by another terminal; close it, or restore where that index is free`);
      }
    } finally {
      for (const fd of others) closeSync(fd);
    }
  }

  /** A new descriptor of cr's on the slave of the pair `master` is the master of (TIOCGPTPEER), with open flags `flags`; never a controlling terminal of cr's. */
  openSlave(master: number, flags: number, target: string): number {
    return this.libc.ioctlValue(master, TIOCGPTPEER, (flags & ~O_CLOEXEC) | O_NOCTTY | O_CLOEXEC, 'ioctl(TIOCGPTPEER)', target);
  }

  /** Sets the pair's termios and window size through its master. */
  setSettings(master: number, termios: Termios, size: WindowSize, target: string): void {
    this.setTermios(master, termios, target);
    this.set(master, TIOCSWINSZ, encodeStruct(winsize, { ws_row: size.rows, ws_col: size.cols, ws_xpixel: size.xpixel, ws_ypixel: size.ypixel }), 'ioctl(TIOCSWINSZ)', target);
  }

  setLocked(master: number, locked: boolean, target: string): void {
    this.set(master, TIOCSPTLCK, Buffer.from(new Int32Array([locked ? 1 : 0]).buffer), 'ioctl(TIOCSPTLCK)', target);
  }

  setPacket(master: number, packet: boolean, target: string): void {
    this.set(master, TIOCPKT, Buffer.from(new Int32Array([packet ? 1 : 0]).buffer), 'ioctl(TIOCPKT)', target);
  }

  setExclusive(fd: number, target: string): void {
    this.libc.ioctlValue(fd, TIOCEXCL, 0, 'ioctl(TIOCEXCL)', target);
  }

  /**
   * Makes the terminal behind the task's descriptor `fd` the controlling terminal of its session
   * (TIOCSCTTY, run by the task, which must lead a session that has none).
   */
  setControllingTerminal(task: RemoteTask, fd: number): void {
    task.syscall({ ...SYS_IOCTL, name: 'ioctl(TIOCSCTTY)' }, [fd, TIOCSCTTY, 0]);
  }

  /** Makes `group` the foreground process group of the task's controlling terminal behind its descriptor `fd` (TIOCSPGRP, run by the task). */
  setForeground(task: RemoteTask, fd: number, group: number): void {
    const pgrp = task.put(Buffer.from(new Int32Array([group]).buffer));
    task.syscall({ ...SYS_IOCTL, name: 'ioctl(TIOCSPGRP)' }, [fd, TIOCSPGRP, pgrp]);
  }

  private setTermios(master: number, t: Termios, target: string): void {
    const bytes = encodeStruct(termios2, { c_iflag: t.iflag, c_oflag: t.oflag, c_cflag: t.cflag, c_lflag: t.lflag, c_line: t.line, c_cc: t.cc, c_ispeed: t.ispeed, c_ospeed: t.ospeed });
    this.set(master, TCSETS2, bytes, 'ioctl(TCSETS2)', target);
  }

  private get(fd: number, request: number, size: number, name: string, target: string): Buffer {
    const bytes = Buffer.alloc(size);
    this.libc.ioctlPointer(fd, request, bytes, name, target);
    return bytes;
  }

  private set(fd: number, request: number, bytes: Buffer, name: string, target: string): void {
    this.libc.ioctlPointer(fd, request, bytes, name, target);
  }

  /** TIOCGSID and TIOCGPGRP fail with ENOTTY on a terminal that is no session's. */
  private orZeroWithoutSession(read: () => number): number {
    try {
      return read();
    } catch (err) {
      if (err instanceof KernelError && err.errno === ENOTTY) return 0;
      throw err;
    }
  }
}

/** Whether `byte` ends a line in canonical mode under `termios` (newline, VEOL, VEOL2). */
function endsLine(byte: number, termios: Termios): boolean {
  return byte === 0x0a || [VEOL, VEOL2].some((i) => termios.cc[i] !== DISABLED && termios.cc[i] === byte);
}

/**
 * The settings under which bytes put into the slave's line discipline are taken as they are:
 * echo, signals and the input processing that changes bytes off; in canonical mode the editing
 * characters disabled, so that each byte is stored as itself and a newline or VEOF still ends a
 * line. Flow control (IXON and its VSTART, VSTOP) is kept.
 */
function quietInput(termios: Termios): Termios {
  const editing = [VINTR, VQUIT, VERASE, VKILL, VSUSP, VREPRINT, VDISCARD, VWERASE, VLNEXT];
  return {
    ...termios,
    iflag: termios.iflag & ~(PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IUCLC | IMAXBEL),
    lflag: termios.lflag & ~(ECHO | ECHONL | ISIG),
    cc: termios.lflag & ICANON ? withCc(termios.cc, editing, DISABLED) : termios.cc,
  };
}

function sameTermios(a: Termios, b: Termios): boolean {
  return a.iflag === b.iflag && a.oflag === b.oflag && a.cflag === b.cflag && a.lflag === b.lflag && a.line === b.line && a.cc.every((c, i) => c === b.cc[i]);
}

/** `cc` with the control characters at `indexes` set to `value`. */
function withCc(cc: readonly number[], indexes: readonly number[], value: number): number[] {
  return cc.map((c, i) => (indexes.includes(i) ? value : c));
}
