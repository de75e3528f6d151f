import { readFileSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import * as Args from '@oclif/core/args';
import * as Flags from '@oclif/core/flags';
import { CrError, ExitCode, ImageError } from '@cr/core';
import { CrCommand } from '../../base-command.js';
import { encodeImage } from '../../image/document.js';

export default class InspectEncode extends CrCommand {
  static override summary = 'Turn a JSON document from cr inspect decode back into an image.';
  static override description =
    'Writes the image atomically, with every digest computed anew, then checks it as cr restore would (every record against its plugin, every blob against the records); an image that does not check out is removed again and the error lists why (exit 4).';
  static override examples = ['<%= config.bin %> inspect encode img.json -D img2', '<%= config.bin %> inspect decode img | jq … | <%= config.bin %> inspect encode - -D img2'];
  static override enableJsonFlag = true;
  static override runsLocally(_flags: object, args: { file?: string }): string | undefined {
    return args.file === '-' ? 'it reads the document from standard input' : undefined;
  }
  static override args = { file: Args.string({ description: 'The document, or - for standard input.', required: true }) };
  static override flags = {
    'images-dir': Flags.string({ char: 'D', helpValue: 'DIR', description: 'Directory to write the image to; it must not exist or be empty.', required: true }),
  };

  async run(): Promise<unknown> {
    const { args, flags } = await this.parse(InspectEncode);
    await this.setUp(flags.config);
    const source = args.file === '-' ? 'standard input' : args.file;
    let data: unknown;
    try {
      // stdin is read as a stream: a pipe from another Node program may be non-blocking
      data = JSON.parse(args.file === '-' ? await text(process.stdin) : readFileSync(args.file, 'utf8'));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code) throw new CrError(`cannot read ${source}: ${code}`, ExitCode.Usage);
      throw new ImageError(`${source} is not valid JSON: ${(err as Error).message}`);
    }
    const image = await encodeImage(data, source, flags['images-dir'], this.registry);
    const files = Object.keys(image.manifest.files).length;
    if (!this.jsonEnabled()) this.log(`encoded ${source} into ${image.reader.imageDir}: ${image.manifest.objects.length} object(s), ${files} file(s), every digest recomputed`);
    return { imageDir: image.reader.imageDir, objects: image.manifest.objects.length, files };
  }
}
