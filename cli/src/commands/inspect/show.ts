import * as Args from '@oclif/core/args';
import { CrError, ExitCode } from '@cr/core';
import { CrCommand } from '../../base-command.js';
import { readSoundImage } from '../../image/read-image.js';

export default class InspectShow extends CrCommand {
  static override summary = 'Show one object of an image: its manifest entry and its record.';
  static override description =
    'OBJECT is an object key as cr inspect lists them (TYPE:ID, e.g. mm:1234 or files:1234:3). Prints the object as the manifest lists it (decision, rule, parents, attributes, files) and its record as JSON; an object not saved (excluded, or an external reference) has no record.';
  static override examples = ['<%= config.bin %> inspect show img tasks:1234', '<%= config.bin %> inspect show img files:1234:3 --json'];
  static override enableJsonFlag = true;
  static override args = {
    dir: Args.string({ description: 'Image directory.', required: true }),
    object: Args.string({ description: 'Object key, TYPE:ID.', required: true }),
  };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(InspectShow);
    await this.setUp(flags.config);
    const image = readSoundImage(args.dir, this.registry);
    const entry = image.manifest.objects.find((o) => o.key === args.object);
    if (!entry) {
      throw new CrError(`${args.dir} holds no object ${args.object}; its objects: ${image.manifest.objects.map((o) => o.key).join(', ')}`, ExitCode.Usage);
    }
    const record = image.records[entry.key];
    if (!this.jsonEnabled()) {
      this.log(`object     ${entry.key}`);
      this.log(`decision   ${entry.policy.decision} (${entry.policy.rule}, from ${entry.policy.source})`);
      this.log(`below      ${entry.parents.join(', ') || '-'}`);
      this.log(`attributes ${JSON.stringify(entry.attributes)}`);
      for (const [name, path] of Object.entries(entry.blobs ?? {})) this.log(`blob       ${name}: ${path} (${image.reader.blobSize(path)} bytes)`);
      this.log(record === undefined ? 'record     none: the object is not saved in this image' : `record     ${entry.record}\n${JSON.stringify(record, null, 2)}`);
    }
    return { object: entry, ...(record === undefined ? {} : { record }) };
  }
}
