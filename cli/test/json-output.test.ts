import { Config } from '@oclif/core/config';
import { colorizeJson } from '@oclif/core/ux';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CrCommand } from '../src/base-command.js';

class Report extends CrCommand {
  async run(): Promise<void> {}
}

/** A report with what --json results hold: nesting, arrays, numbers, booleans, null, escapes. */
const REPORT = {
  imageDir: '/tmp/img "x"',
  objects: [{ key: 'tasks:42', attributes: { pid: 42, comm: 'a\\b\n' }, policy: { decision: 'include' }, blobs: {} }],
  phases: { check: 1.5, recreate: 12 },
  frozenMs: 1e-7,
  ok: true,
  parent: null,
  warnings: [],
};

afterEach(() => vi.restoreAllMocks());

describe('--json output', () => {
  it('is the text oclif writes when no JSON theme asks for colours', async () => {
    const config = await Config.load({ root: process.cwd() });
    const lines: string[] = [];
    vi.spyOn(console, 'log').mockImplementation((text: string) => void lines.push(text));
    new Report([], config).logJson(REPORT);
    expect(config.theme?.json).toBeUndefined();
    expect(lines).toEqual([colorizeJson(REPORT, { pretty: true })]);
  });
});
