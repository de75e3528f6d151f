import { readFileSync } from 'node:fs';

/** cr's own version, from core's package.json, recorded in every image. */
export const CR_VERSION: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
