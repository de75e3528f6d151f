import 'reflect-metadata';
import { execFileSync } from 'node:child_process';
import { Kernel } from '/work/main/core/dist/index.js';
const k = new Kernel();
const pt = k.ptrace;
const N = 100;
const pids = execFileSync('sh', ['-c', `for i in $(seq ${N}); do sleep 600 </dev/null >/dev/null 2>&1 & echo $!; done`], { encoding: 'utf8' }).trim().split('\n').map(Number);
const sigs = Array.from({ length: 64 }, (_, i) => i + 1).filter((s) => s !== 9 && s !== 19 && s !== 32 && s !== 33);
const PTRACE_SYSCALL = 24;
try {
  const tasks = pids.map((p) => k.seize(p));
  for (let round = 0; round < 3; round++) {
    let t = performance.now();
    const seq = tasks.map((task) => sigs.map((s) => task.getSignalAction(s).handler));
    const a = performance.now() - t;
    t = performance.now();
    const par = tasks.map(() => []);
    for (const s of sigs) {
      const saved = tasks.map((task) => { const r = pt.rawRegs(task.pid); pt.enterRemote(task.pid, r, 13, [BigInt(s), 0n, task.guarded.outArea, 8n]); pt.libc.ptrace(PTRACE_SYSCALL, task.pid, 0, 0, 'x'); return r; });
      for (const task of tasks) { pt.waitStop(task.pid); pt.libc.ptrace(PTRACE_SYSCALL, task.pid, 0, 0, 'x'); }
      tasks.forEach((task, i) => { pt.waitStop(task.pid); const rax = pt.rawRegs(task.pid).readBigInt64LE(80); pt.setRawRegs(task.pid, saved[i]); if (rax !== 0n) throw new Error('rax ' + rax); par[i].push(pt.readMemory(task.pid, task.guarded.outArea, 8).readBigUInt64LE()); });
    }
    const b = performance.now() - t;
    const same = JSON.stringify(seq.map(x => x.map(String))) === JSON.stringify(par.map(x => x.map(String)));
    console.log(`sequential ${a.toFixed(0)} ms, pipelined ${b.toFixed(0)} ms, same ${same}`);
  }
  tasks.forEach((t) => t.release());
} finally { for (const p of pids) try { process.kill(p, 'SIGKILL'); } catch {} }
