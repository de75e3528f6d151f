import { descriptionHoldersSchema, descriptorNumberSchema, pidSchema } from '@cr/schemas';
import { z } from 'zod';

const ptyIndex = z.lazy(() => z.number().int().min(0).max(0xfffff).describe('N of /dev/pts/N'));

/** One open file description on the pair, and every process's descriptors on it. */
export const ptyDescriptionSchema = z.lazy(() =>
  z.strictObject({
    end: z.enum(['master', 'slave']),
    /** open(2) flags of the description (access mode and status flags), without close-on-exec. */
    flags: z.number().int().nonnegative(),
    holders: z.array(z.strictObject({ pid: pidSchema, fds: z.array(descriptorNumberSchema).min(1) })).min(1),
  }),
);

/**
 * A pseudo-terminal pair whose master the processes of the checkpoint hold: its settings, the
 * bytes its slave side wrote that the master had not read yet ("output" blob) and those typed
 * into the master that the slave side had not read ("input" blob), the session it controls, and
 * every descriptor on either end.
 */
export const ptyRecordSchema = z.lazy(() => {
  const u32 = z.number().int().min(0).max(0xffff_ffff);
  const u16 = z.number().int().min(0).max(0xffff);
  const termiosSchema = z.strictObject({
    iflag: u32,
    oflag: u32,
    cflag: u32,
    lflag: u32,
    line: z.number().int().min(0).max(255).describe('the line discipline (0: N_TTY)'),
    cc: z.array(z.number().int().min(0).max(255)).length(19).describe('the control characters (VINTR, VQUIT … of struct termios2)'),
    ispeed: u32,
    ospeed: u32,
  });
  return z.strictObject({
    kind: z.literal('pty'),
    index: ptyIndex,
    termios: termiosSchema,
    winsize: z.strictObject({ rows: u16, cols: u16, xpixel: u16, ypixel: u16 }),
    locked: z.boolean().describe('TIOCSPTLCK: the slave could not be opened'),
    packet: z.boolean().describe('TIOCPKT: packet mode on the master'),
    exclusive: z.boolean().describe('TIOCEXCL on the slave'),
    session: z.number().int().nonnegative().describe('the session it is the controlling terminal of (0: none); restored when its leader is in the image'),
    foreground: z.number().int().nonnegative().describe('its foreground process group (0: none)'),
    output: z.number().int().nonnegative().describe('bytes written by the slave side and not yet read from the master, in the "output" blob'),
    input: z
      .number()
      .int()
      .positive()
      .optional()
      .describe('bytes typed into the master and not yet read on the slave side, as typed again (a line ended by end-of-file ends with VEOF), in the "input" blob; absent when none (and in images made before it was saved)'),
    descriptions: z.array(ptyDescriptionSchema).min(1),
  });
});

/**
 * Descriptors above stdio on the slave of a terminal whose master is outside the checkpoint (the
 * user's terminal, an ssh session): given again at restore with --inherit-fd.
 */
export const givenTerminalRecordSchema = z.lazy(() =>
  z.strictObject({
    kind: z.literal('given'),
    index: ptyIndex,
    path: z.string().describe('the terminal as /proc/PID/fd/N named it'),
    flags: z.number().int().nonnegative().describe('open(2) flags, without close-on-exec'),
    fds: z.array(descriptorNumberSchema).min(1),
    holders: descriptionHoldersSchema,
  }),
);

/**
 * A session leader of the checkpoint whose controlling terminal is outside it (a shell's terminal,
 * a tmux pane): saved so that the checkpoint warns; the restored session has no controlling terminal.
 */
export const outsideTerminalRecordSchema = z.lazy(() =>
  z.strictObject({
    kind: z.literal('outside-ctty'),
    terminal: z.string().describe('the terminal, as its device number major:minor'),
  }),
);

export const ttysRecordSchema = z.lazy(() => z.discriminatedUnion('kind', [ptyRecordSchema, givenTerminalRecordSchema, outsideTerminalRecordSchema]));
export type TtysRecord = z.infer<typeof ttysRecordSchema>;
export type PtyRecord = z.infer<typeof ptyRecordSchema>;
export type GivenTerminalRecord = z.infer<typeof givenTerminalRecordSchema>;
export type PtyDescription = z.infer<typeof ptyDescriptionSchema>;
