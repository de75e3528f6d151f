import { writeFileSync } from 'node:fs';
import * as Flags from '@oclif/core/flags';
import { CrCommand } from '../../base-command.js';
import { imageDirArg } from '../../image/image-arg.js';
import { decodeImage } from '../../image/document.js';
import { readSoundImage } from '../../image/read-image.js';

export default class InspectDecode extends CrCommand {
  static override summary = 'Write an image as one JSON document.';
  static override description =
    'The document holds the manifest (without the file digests), every record, and every blob in base64 (process memory too, so it is about a third larger than the image and is built in memory). Edit it and turn it back into an image with cr inspect encode. The image is checked first, every blob by its digest.';
  static override examples = ['<%= config.bin %> inspect decode img > img.json', '<%= config.bin %> inspect decode img -o img.json'];
  static override enableJsonFlag = true;
  static override args = imageDirArg;
  static override flags = { output: Flags.string({ char: 'o', helpValue: 'FILE', description: 'Write the document to FILE instead of standard output.' }) };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(InspectDecode);
    await this.setUp(flags.config);
    const document = await decodeImage(readSoundImage(args.dir, this.registry));
    if (flags.output !== undefined) {
      writeFileSync(flags.output, `${JSON.stringify(document, null, 2)}\n`, { mode: 0o600 });
      if (!this.jsonEnabled()) this.log(`decoded ${args.dir} into ${flags.output}`);
      return { output: flags.output };
    }
    if (!this.jsonEnabled()) this.log(JSON.stringify(document, null, 2));
    return document;
  }
}
