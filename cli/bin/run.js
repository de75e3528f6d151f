#!/usr/bin/env node
import { settleUserEnvironment } from '../dist/user-environment.js';

settleUserEnvironment();
const argv = process.argv.slice(2);
if (argv.length === 1 && argv[0] === '--version') {
  const { versionLine } = await import('../dist/version.js');
  console.log(versionLine(new URL('../package.json', import.meta.url)));
} else {
  // Loaded only now: oclif reads HOME as it loads. The bundle is made by the build (scripts/bundle.js).
  const { main } = await import('../dist/bundle/main.js');
  await main(argv, import.meta.url);
}
