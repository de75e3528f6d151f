import { ExitCode, Kernel } from '@cr/core';
import { CrCommand } from '../base-command.js';
import { renderTable } from '../table.js';

export default class Check extends CrCommand {
  static override summary = 'Check that this kernel has what cr needs.';
  static override description = `Exercises each kernel feature cr relies on (ptrace, the *_next_id sysctls, clone3 with set_tid, pagemap, namespaces, nsfs pinning) for real, like criu check. Exits 0 when every required feature works, ${ExitCode.Unsupported} otherwise.`;
  static override examples = ['<%= config.bin %> check', '<%= config.bin %> check --json'];
  static override enableJsonFlag = true;

  async run(): Promise<unknown> {
    await this.parse(Check);
    const results = new Kernel().features.runAll();
    const missing = results.filter((r) => r.required && !r.ok);
    if (!this.jsonEnabled()) {
      this.log(renderTable(['FEATURE', 'STATUS', 'DETAIL'], results.map((r) => [r.feature, r.ok ? 'ok' : r.required ? 'MISSING' : 'absent', r.detail])));
      this.log(missing.length === 0 ? 'all required features are present' : `${missing.length} required feature(s) missing`);
    }
    if (missing.length > 0) process.exitCode = ExitCode.Unsupported;
    return { ok: missing.length === 0, features: results };
  }
}
