import { createRequire } from 'node:module';
import { describeBytes, type ProgressReporter, type ProgressTask, type ProgressWork } from '@cr/core/engine';
import type { MultiBar, SingleBar } from 'cli-progress';

/** How long work must have run before its bar appears, unless CR_PROGRESS_DELAY_MS says otherwise. */
export const DEFAULT_PROGRESS_DELAY_MS = 1000;

const FORMAT = '{label} |{bar}| {percentage}% {done}/{size} eta {eta_formatted}';
const FORMAT_NO_TOTAL = '{label} {done}';

/**
 * Progress bars (cli-progress) on a terminal for work that has lasted over `delayMs`: one bar per
 * piece of work in progress (the phase's objects, the blob being saved or read), removed when it
 * ends. cli-progress is loaded when the first bar appears. `write` puts a line (a log line) above
 * the bars rather than through them.
 */
export class TerminalProgress implements ProgressReporter {
  private bars: MultiBar | undefined;
  private shown = 0;

  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly delayMs: number,
  ) {}

  start(work: ProgressWork): ProgressTask {
    const started = performance.now();
    let done = 0;
    let bar: SingleBar | undefined;
    return {
      advance: (units) => {
        done += units;
        const appearing = !bar && performance.now() - started >= this.delayMs;
        if (appearing) bar = this.show(work);
        bar?.update(work.total === undefined ? 0 : Math.min(done, work.total), { done: describeSize(done, work.unit) });
        // Drawn at once: work that ends before the next redraw (a tenth of a second) is seen too.
        if (appearing) this.bars?.update();
      },
      end: () => {
        if (bar) this.hide(bar);
        bar = undefined;
      },
    };
  }

  write(text: string): void {
    if (this.bars) this.bars.log(text);
    else this.stream.write(text);
  }

  private show(work: ProgressWork): SingleBar {
    this.bars ??= this.newBars();
    this.shown++;
    const total = work.total ?? 0;
    return this.bars.create(total, 0, { label: work.label, done: describeSize(0, work.unit), size: describeSize(total, work.unit) }, work.total === undefined ? { format: FORMAT_NO_TOTAL } : {});
  }

  private hide(bar: SingleBar): void {
    this.bars?.remove(bar);
    if (--this.shown > 0) return;
    this.bars?.stop();
    this.bars = undefined;
  }

  private newBars(): MultiBar {
    const { MultiBar, Presets } = createRequire(import.meta.url)('cli-progress') as typeof import('cli-progress');
    return new MultiBar({ stream: this.stream, format: FORMAT, clearOnComplete: true, hideCursor: false, gracefulExit: false, barsize: 30 }, Presets.shades_classic);
  }
}

/** "412.0 MiB" of bytes, "3" of objects (the label says what they are). */
function describeSize(n: number, unit: ProgressWork['unit']): string {
  return unit === 'bytes' ? describeBytes(n) : String(n);
}
