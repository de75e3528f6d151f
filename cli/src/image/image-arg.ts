import * as Args from '@oclif/core/args';

/** The image directory argument of cr inspect and its views. */
export const imageDirArg = { dir: Args.string({ description: 'Image directory.', required: true }) };
