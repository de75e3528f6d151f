import { styleText } from 'node:util';

/** What pino writes for each line, as far as people are shown it. */
interface LogLine {
  level: string;
  time?: string;
  msg?: string;
  plugin?: string;
  object?: string;
}

type Colour = Parameters<typeof styleText>[0];
const COLOURS: Record<string, Colour> = { info: 'green', debug: 'blue', trace: 'gray' };

/**
 * A pino destination that writes each log line for people, up to info level: warnings and errors
 * are not repeated, cr prints them itself (`cr: warning: …`, `cr: …`). Off a terminal, lines look
 * like cr's other stderr lines, `cr: debug: …`, for grep and CI logs; on a terminal, they start
 * with the time of day and the level in colour. A plugin's line names the object it is about.
 */
export function humanLines(out: (text: string) => void, terminal: { colour: boolean } | undefined): { write(line: string): void } {
  return {
    write(line: string) {
      const entry = JSON.parse(line) as LogLine;
      if (entry.level === 'warn' || entry.level === 'error' || entry.level === 'fatal') return;
      const text = `${entry.plugin !== undefined && entry.object !== undefined ? `${entry.object}: ` : ''}${entry.msg ?? ''}`;
      if (!terminal) return out(`cr: ${entry.level}: ${text}\n`);
      const time = entry.time === undefined ? '' : `${new Date(entry.time).toTimeString().slice(0, 8)}.${entry.time.slice(20, 23)} `;
      const level = entry.level.padEnd(5);
      out(`${time}${terminal.colour ? styleText(COLOURS[entry.level] ?? 'white', level, { validateStream: false }) : level} ${text}\n`);
    },
  };
}
