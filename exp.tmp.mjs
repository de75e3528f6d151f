import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { Kernel } from '/work/main/core/dist/index.js';
const k = new Kernel();
let pid = Number(readFileSync('/proc/sys/kernel/ns_last_pid', 'utf8')) + 3000;
const seed = k.createSeed(pid++);
const t = (f) => { const s = performance.now(); const r = f(); return [r, ((performance.now() - s) * 1000).toFixed(0)]; };
try {
  for (let i = 0; i < 8; i++) {
    const [child, tc] = t(() => k.createChildSeed(seed, pid++, false, []));
    const [, t1] = t(() => child.syscall({ name: 'getpid', nr: 39 }));
    const [, t2] = t(() => child.syscall({ name: 'getpid', nr: 39 }));
    console.log(`createChildSeed ${tc} us, first call ${t1} us, second ${t2} us`);
    child.kill();
    seed.reap(child.pid);
  }
} finally { seed.kill(); }
