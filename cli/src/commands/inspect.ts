import * as Flags from '@oclif/core/flags';
import { CrError, ExitCode, describeSelector } from '@cr/core';
import { readVerifiedImage } from '@cr/core/engine';
import { CrCommand } from '../base-command.js';
import { errorJson } from '../errors.js';
import { imageDirArg } from '../image/image-arg.js';
import { renderTable } from '../table.js';
import { describeAdvice } from './advise.js';

export default class Inspect extends CrCommand {
  static override summary = 'Show what an image holds, and verify it.';
  static override description = `Prints the manifest (format, tool and kernel versions, target), the advice the process had given, every object with the policy decision that was taken for it and the rule that decided, the external references restore must find, and the saved records. Every file's size and digest is checked, and every record against its plugin's schema and its consistency with its blobs and the rest of the image; any problem is reported and makes the command exit ${ExitCode.Image}. Its subcommands show parts of an image as crit does: ps (the process tree), fds, mems (mappings with saved pages), show (one object), diff (two images), decode (to one JSON document) and encode (back).`;
  static override examples = ['<%= config.bin %> inspect img', '<%= config.bin %> inspect img --json'];
  static override enableJsonFlag = true;
  static override args = imageDirArg;
  static override flags = { records: Flags.boolean({ description: 'Also print every record.', default: true, allowNo: true }) };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(Inspect);
    await this.setUp(flags.config);
    const { reader, manifest, records, problems } = await readVerifiedImage(args.dir, this.registry);
    if (!this.jsonEnabled()) {
      const t = manifest.target;
      this.log(`image      ${reader.imageDir}`);
      this.log(`format     ${manifest.format} v${manifest.formatVersion}, written by cr ${manifest.tool.version} at ${manifest.createdAt}`);
      this.log(`host       ${manifest.host.hostname}, Linux ${manifest.host.kernelRelease} ${manifest.host.arch}`);
      this.log(`target     ${t.kind === 'process' ? `process ${t.pid}` : `IPC namespace ${t.path}`}`);
      if (manifest.advice) this.log(`advice     ${manifest.advice.file}\n${describeAdvice(manifest.advice.advice).map((l) => `             ${l}`).join('\n')}`);
      this.log('');
      this.log(renderTable(['OBJECT', 'DECISION', 'RULE', 'SOURCE', 'BELOW'], manifest.objects.map((o) => [o.key, o.policy.decision, o.policy.rule, o.policy.source, o.parents.join(',')])));
      const references = manifest.objects.filter((o) => o.reference);
      if (references.length > 0) {
        this.log('\nexternal references (not saved; restore must find each alive, with these attributes):');
        this.log(
          renderTable(
            ['OBJECT', 'ATTRIBUTES', 'USED BY'],
            references.map((o) => [o.key, describeSelector(o.attributes), o.reference!.usedBy.join(',') || '(marked external)']),
          ),
        );
      }
      if (flags.records) {
        for (const [key, record] of Object.entries(records)) this.log(`\n${key}\n${JSON.stringify(record, null, 2)}`);
      }
      this.log(problems.length === 0 ? '\nintegrity: every file matches its digest' : `\nintegrity: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
    }
    if (problems.length > 0) {
      const error = new CrError(`image ${args.dir} failed verification`, ExitCode.Image);
      if (!this.jsonEnabled()) throw error;
      // One document: the error, and what could be read of the image.
      this.logJson({ ...errorJson(error, this.warnings), manifest, records, problems });
      this.exit(error.exitCode);
    }
    return { manifest, records, problems };
  }
}
