#!/bin/sh
":" //; if [ -n "${NODE_EXTRA_CA_CERTS-}" ]; then CR_NODE_EXTRA_CA_CERTS=$NODE_EXTRA_CA_CERTS; export CR_NODE_EXTRA_CA_CERTS; unset NODE_EXTRA_CA_CERTS; fi; exec node "$0" "$@"
// The line above is sh, and a string and a comment to node. Node reads and parses the whole file of
// NODE_EXTRA_CA_CERTS as it starts, before any of cr runs: 30-40 ms with a distribution's bundle,
// more than the rest of node's start-up. cr makes no TLS connection, so it runs node without it,
// and hands it back to every process it starts (settleUserEnvironment). node resolves the link
// npm makes to this file, as it does for any main script.
// CommonJS (bin/package.json), as is all cr loads for a command: an ES module entry would start
// node's ES module loader, which costs a command more than the rest of its start-up.
const { join } = require('node:path');
const { settleUserEnvironment } = require('../dist/user-environment.cjs');

settleUserEnvironment();
const argv = process.argv.slice(2);
const root = join(__dirname, '..');
if (argv.length === 1 && argv[0] === '--version') {
  const { versionLine } = require('../dist/version.cjs');
  console.log(versionLine(join(root, 'package.json')));
} else {
  // A running cr service (cr service start) is handed the command before cr's code is loaded:
  // that is most of a short command's time. It may hand it back, to run here.
  const { runThroughService, serviceFor } = require('../dist/service/client.cjs');
  const socket = serviceFor(argv);
  if (socket === undefined) runHere();
  else runThroughService(argv, socket, root).then((code) => (code === undefined ? runHere() : (process.exitCode = code)));
}

function runHere() {
  // Loaded only now: oclif reads HOME as it loads. The bundle keeps a code cache per command word.
  const { loadBundle } = require('../dist/bundle-loader.cjs');
  const word = /^[a-z][a-z-]{0,31}$/.test(argv[0] ?? '') ? argv[0] : 'cr';
  loadBundle(word).main(argv, root);
}
