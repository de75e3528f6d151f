#!/usr/bin/env node
import { settleUserEnvironment } from '../dist/user-environment.js';

settleUserEnvironment();
// Loaded only now: oclif reads HOME as it loads.
const { main } = await import('../dist/main.js');
await main(process.argv.slice(2), import.meta.url);
