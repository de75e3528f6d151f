#!/usr/bin/env node
import { settleUserEnvironment } from '../dist/user-environment.js';

settleUserEnvironment();
const argv = process.argv.slice(2);
if (argv.length === 1 && argv[0] === '--version') {
  const { versionLine } = await import('../dist/version.js');
  console.log(versionLine(new URL('../package.json', import.meta.url)));
} else {
  // Loaded only now: oclif reads HOME as it loads. The bundle keeps a code cache per command word.
  const { loadBundle } = await import('../dist/bundle-loader.js');
  const word = /^[a-z][a-z-]{0,31}$/.test(argv[0] ?? '') ? argv[0] : 'cr';
  await loadBundle(word).main(argv, import.meta.url);
}
