// Runs one command and reports, as one JSON line on stdout, its wall time and its peak RSS: the
// largest ru_maxrss among this process's children (getrusage(RUSAGE_CHILDREN)), and the command is
// the only child. The bench runs cr through this so that cr's peak RSS is cr's alone, not that
// of the 1 GiB fixtures the bench itself starts.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { Libc } from '@cr/core/engine';

const [command, ...args] = process.argv.slice(2);
const start = process.hrtime.bigint();
const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
let stdout = '';
let stderr = '';
child.stdout.on('data', (d) => (stdout += d));
child.stderr.on('data', (d) => (stderr += d));
child.once('error', (err) => {
  process.stdout.write(`${JSON.stringify({ status: -1, stdout, stderr: err.message })}\n`);
  process.exit(1);
});
let seconds;
child.once('exit', () => (seconds = Number(process.hrtime.bigint() - start) / 1e9));
// Reported once its output is read to the end too.
child.once('close', (status, signal) => {
  const maxRss = new Libc().childrenMaxRss();
  process.stdout.write(`${JSON.stringify({ status, signal, seconds, maxRss, stdout, stderr })}\n`);
});
