import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, cr, tempDir, type CliResult } from './helpers/cli.js';
import { crAsync, waitForLine } from './helpers/processes.js';

/**
 * Another user, real to the kernel: the processes and files it makes here run and are created
 * with this uid (spawn's uid/gid, which also drops the supplementary groups). It has no account;
 * everything it made is under `base`, removed after each test.
 */
const OTHER = 64_125;
const BIN = join(REPO, 'cli', 'bin', 'run.js');

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** A directory for the test that the other user may enter but not write; `home` is the other user's. */
let base: string;
let home: string;
beforeEach(() => {
  base = cleanup.dir(tempDir('cr-untrusted-'));
  chmodSync(base, 0o755);
  home = join(base, 'home');
  mkdirSync(home);
  chownSync(home, OTHER, OTHER);
});

/**
 * Runs cr as the other user, with the environment a job of an account-less uid may have (a
 * container's, a CI runner's): no SHELL, and HOME only when given.
 */
function crAs(args: string[], env: Record<string, string> = {}, withHome = true): CliResult {
  // The clone may sit below a directory only root can enter (CI's, a mktemp -d): the other user
  // gets just the right to read and search files, so that it can run cr's code from there.
  const asOther = ['--reuid', String(OTHER), '--regid', String(OTHER), '--clear-groups', '--inh-caps', '+dac_read_search', '--ambient-caps', '+dac_read_search'];
  const { SHELL: _shell, HOME: _home, ...inherited } = process.env;
  const r = spawnSync('setpriv', [...asOther, process.execPath, BIN, ...args], {
    cwd: home,
    encoding: 'utf8',
    env: { ...inherited, ...(withHome ? { HOME: home } : {}), ...env },
  });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a command as the other user; it must succeed. */
function runAs(command: string, args: string[]): void {
  const r = spawnSync(command, args, { uid: OTHER, gid: OTHER, encoding: 'utf8', cwd: home });
  if (r.status !== 0) throw new Error(`${command} ${args.join(' ')} as uid ${OTHER}: ${r.stderr}`);
}

/** Writes a file as the other user, so that the kernel makes it theirs. */
function writeAs(path: string, text: string): void {
  runAs(process.execPath, ['-e', `require('fs').writeFileSync(${JSON.stringify(path)}, ${JSON.stringify(text)})`]);
}

/** A sleeping process of `uid`, killed after the test. */
async function sleeper(uid = 0): Promise<number> {
  const child = cleanup.process(spawn('sleep', ['300'], { uid, gid: uid, stdio: 'ignore' }));
  await new Promise((ok) => child.once('spawn', ok));
  return child.pid!;
}

const startTime = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};

interface Plan {
  objects: { key: string; type: string; policy: { decision: string; source: string } }[];
  advice?: { file: string; advice: unknown };
  warnings: string[];
}

async function plan(pid: number, adviceDir: string): Promise<{ r: CliResult; plan: Plan }> {
  const r = await crAsync(['checkpoint', String(pid), '--dry-run', '--json'], { env: { CR_ADVICE_DIR: adviceDir } });
  if (r.status !== 0) throw new Error(`dry run failed (${r.status}): ${r.stderr}${r.stdout}`);
  return { r, plan: JSON.parse(r.stdout) as Plan };
}

const decisionOf = (p: Plan, type: string) => p.objects.find((o) => o.type === type)!.policy;

describe('advice and other users', () => {
  let adviceDir: string;
  beforeEach(() => {
    adviceDir = join(base, 'advice');
  });

  it('a user may not advise about a process of root: refused (exit 5), nothing written', async () => {
    const roots = await sleeper();
    const r = crAs(['advise', String(roots), '--exclude', 'ipc-ns'], { CR_ADVICE_DIR: adviceDir });
    expect(r.stderr).toBe(`cr: PID ${roots} runs as uid 0/0/0 (real/effective/saved); only root may advise about it, not uid ${OTHER}; run cr advise as root\n`);
    expect(r.status).toBe(5);
    expect(existsSync(adviceDir)).toBe(false);
  });

  it('a uid with no account, no HOME and no SHELL runs cr: its help and its config', () => {
    const help = crAs(['advise', '--help'], {}, false);
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('USAGE');
    const config = crAs(['config', '--json'], {}, false);
    expect(config.stderr).toBe('');
    expect(config.status).toBe(0);
  });

  it('a program of another user advises about itself as docs/selecting.md shows, and with cr advise; root\'s checkpoint applies both', async () => {
    // The advice directory, as root's first cr advise makes it.
    const roots = await sleeper();
    expect(cr(['advise', String(roots), '--exclude', 'uts-ns'], REPO, { CR_ADVICE_DIR: adviceDir }).status).toBe(0);
    expect([statSync(adviceDir).mode & 0o7777, statSync(join(adviceDir, '0')).mode & 0o7777]).toEqual([0o1777, 0o700]);

    const docs = readFileSync(join(REPO, 'docs/selecting.md'), 'utf8');
    const snippet = /```python\n([\s\S]*?)```/.exec(docs)![1]!;
    const out = join(home, 'python.out');
    const program = cleanup.process(
      spawn('python3', ['-c', `${snippet}\nimport time\nprint('ready', flush=True)\ntime.sleep(300)\n`], {
        uid: OTHER,
        gid: OTHER,
        env: { ...process.env, CR_ADVICE_DIR: adviceDir },
        stdio: ['ignore', 'pipe', 'pipe'],
      }),
    );
    program.stdout!.on('data', (d: Buffer) => writeFileSync(out, d, { flag: 'a' }));
    program.stderr!.on('data', (d: Buffer) => writeFileSync(out, d, { flag: 'a' }));
    await waitForLine(out, /^ready$/);
    const pid = program.pid!;
    const file = join(adviceDir, String(OTHER), `${pid}-${startTime(pid)}.json`);
    expect(statSync(file).uid).toBe(OTHER);
    expect(statSync(join(adviceDir, String(OTHER))).uid).toBe(OTHER);

    const own = await plan(pid, adviceDir);
    // The docs' program names a queue it does not have here: the advice applies, and says so.
    const unmatched = `sysvipc-msg:key=0x00005151 (advice ${file}) matches no collected object, so it has no effect`;
    expect(own.plan.warnings).toEqual([unmatched]);
    expect(own.r.stderr).toBe(`cr: warning: ${unmatched}\n`);
    expect(own.plan.advice).toEqual({ file, advice: { exclude: ['sysvipc'], external: ['sysvipc-msg:key=0x5151'] } });

    const given = crAs(['advise', String(pid), '--exclude', 'uts-ns'], { CR_ADVICE_DIR: adviceDir });
    expect(given.stderr).toBe('');
    expect(given.status).toBe(0);
    expect(statSync(file).uid).toBe(OTHER);
    const both = await plan(pid, adviceDir);
    expect(both.plan.advice!.advice).toEqual({ exclude: ['sysvipc', 'uts-ns'], external: ['sysvipc-msg:key=0x5151'] });
    expect(decisionOf(both.plan, 'uts-ns')).toEqual({ decision: 'exclude', rule: 'type uts-ns', source: `advice ${file}` });
  });

  it('advice another user planted for root\'s process is ignored with a warning, and the checkpoint goes on', async () => {
    // The directory as an administrator may have made it, before root's cr made its own in it.
    mkdirSync(adviceDir);
    chmodSync(adviceDir, 0o1777);
    const roots = await sleeper();
    runAs('mkdir', [join(adviceDir, '0')]);
    const planted = join(adviceDir, '0', `${roots}-${startTime(roots)}.json`);
    writeAs(planted, '{"exclude": ["mm", "files"]}');
    const warning = `advice ${planted} ignored: ${join(adviceDir, '0')} belongs to uid ${OTHER}, not to root; remove it`;

    const { r, plan: p } = await plan(roots, adviceDir);
    expect(r.stderr).toBe(`cr: warning: ${warning}\n`);
    expect(p.warnings).toEqual([warning]);
    expect(p.advice).toBeUndefined();
    expect(decisionOf(p, 'mm')).toMatchObject({ decision: 'include', source: 'default' });

    const img = join(base, 'img');
    const saved = await crAsync(['checkpoint', String(roots), '-D', img], { env: { CR_ADVICE_DIR: adviceDir } });
    expect(saved.stderr).toBe(`cr: warning: ${warning}\n`);
    expect(saved.status).toBe(0);
    expect(JSON.parse(readFileSync(join(img, 'manifest.json'), 'utf8')).advice).toBeUndefined();

    // Root's own cr advise will not write into the other user's directory: it names it.
    const advise = cr(['advise', String(roots), '--exclude', 'ipc-ns'], REPO, { CR_ADVICE_DIR: adviceDir });
    expect(advise.stderr).toContain(`cr: the advice directory ${join(adviceDir, '0')} belongs to uid ${OTHER}, not to root; remove it (rm -r ${join(adviceDir, '0')})`);
    expect(advise.status).toBe(5);
  });

  it('symlinks another user plants at the temporary and the final names do not make root\'s cr write through them', async () => {
    const victim = join(base, 'victim');
    writeFileSync(victim, 'a file of root\n');
    const pid = await sleeper(OTHER);
    expect(cr(['advise', String(pid), '--exclude', 'uts-ns'], REPO, { CR_ADVICE_DIR: adviceDir }).status).toBe(0);
    const own = join(adviceDir, String(OTHER));
    // cr's temporary name holds its own PID: the shell plants the links as the other user, then
    // becomes cr with that PID. The old temporary name in the shared directory is planted too.
    const plant = (at: string) => `setpriv --reuid=${OTHER} --regid=${OTHER} --clear-groups ln -s ${victim} ${at}`;
    const r = spawnSync(
      'sh',
      ['-c', `${plant(`${own}/.${pid}.$$.partial`)} && ${plant(`${adviceDir}/.${pid}.$$.partial`)} && exec "$0" "$@"`, process.execPath, BIN, 'advise', String(pid), '--exclude', 'ipc-ns'],
      { encoding: 'utf8', env: { ...process.env, CR_ADVICE_DIR: adviceDir } },
    );
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('a file of root\n');
    const file = join(own, `${pid}-${startTime(pid)}.json`);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ exclude: ['uts-ns', 'ipc-ns'] });

    // A symlink at the advice file itself is read as nothing, with a warning.
    runAs('ln', ['-sf', victim, file]);
    const { plan: p } = await plan(pid, adviceDir);
    expect(p.warnings).toEqual([`advice ${file} ignored: it is a symlink; remove it`]);
    expect(p.advice).toBeUndefined();
    expect(cr(['advise', String(pid), '--exclude', 'uts-ns'], REPO, { CR_ADVICE_DIR: adviceDir }).status).toBe(0);
    expect(readFileSync(victim, 'utf8')).toBe('a file of root\n');
    expect(lstatSync(file).isFile()).toBe(true);
  });
});

describe('config files and plugins from directories other users can write', () => {
  /** A world-writable directory (like /tmp) and, below it, root's working directory. */
  let shared: string;
  let work: string;
  let marker: string;
  beforeEach(() => {
    shared = join(base, 'shared');
    work = join(shared, 'work');
    mkdirSync(work, { recursive: true });
    chmodSync(shared, 0o1777);
    marker = join(base, 'ran-as-root');
  });
  /** Module text that leaves `marker` behind when it is run. */
  const leavesMarker = (exports: string) => `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = ${exports};`;

  it('a cr.config.cjs another user wrote above the cwd is refused unrun (exit 3), and runs once CR_SAFE_DIRECTORIES allows its directory', () => {
    writeAs(join(shared, 'cr.config.cjs'), leavesMarker('{}'));
    const refused = cr(['config'], work);
    expect(refused.stderr).toBe(
      `cr: refusing to load config ${join(shared, 'cr.config.cjs')}: it belongs to uid ${OTHER}, not to root; cr loads config files and plugins only if they and their ` +
        `directory belong to root and no one else can write them. If you trust it, allow its directory: CR_SAFE_DIRECTORIES=${shared} (colon-separated; "*" allows any)\n`,
    );
    expect(refused.status).toBe(3);
    expect(existsSync(marker)).toBe(false);

    const allowed = cr(['config'], work, { CR_SAFE_DIRECTORIES: shared });
    expect(allowed.status).toBe(0);
    expect(allowed.stdout).toContain(`config file: ${join(shared, 'cr.config.cjs')}`);
    expect(existsSync(marker)).toBe(true);
  });

  it('a .crrc.json of root listing plugins is refused in a directory others can write; a plugin another user wrote is refused (exit 6) until allowed', () => {
    writeFileSync(join(shared, '.crrc.json'), JSON.stringify({ plugins: ['./evil.cjs'] }));
    const config = cr(['types'], work);
    expect(config.stderr).toMatch(new RegExp(`^cr: refusing to load config ${join(shared, '.crrc.json')}: its directory ${shared} is writable by others \\(mode 1777\\);`));
    expect(config.status).toBe(3);

    // A trusted config of root names a plugin module that lies where others can write.
    const project = join(base, 'project');
    mkdirSync(project);
    const plugin = join(shared, 'plugin.cjs');
    writeFileSync(join(project, '.crrc.json'), JSON.stringify({ plugins: [plugin] }));
    writeAs(
      plugin,
      leavesMarker(`class Planted { apiVersion = 2; type = 'planted'; version = 1; description = 'planted'; collectsFrom = ['target:process'];
        recordSchema = { safeParse: (v) => ({ success: true, data: v }) }; collect() { return []; } save() { return {}; } restore() {} }`),
    );
    const refused = cr(['types'], project);
    expect(refused.stderr).toMatch(new RegExp(`^cr: refusing to load plugin ${plugin} ${plugin}: it belongs to uid ${OTHER}, not to root; .* CR_SAFE_DIRECTORIES=${shared} `));
    expect(refused.status).toBe(6);
    expect(existsSync(marker)).toBe(false);

    const allowed = cr(['types'], project, { CR_SAFE_DIRECTORIES: shared });
    expect(allowed.stderr).toBe('');
    expect(allowed.stdout).toMatch(/^planted\s+1\s/m);
    expect(existsSync(marker)).toBe(true);
  });

  it('neither cosmiconfig\'s meta config in the cwd nor a node_modules above it that another user planted is run', () => {
    chmodSync(work, 0o1777);
    runAs('mkdir', ['-p', join(work, '.config'), join(shared, 'node_modules', '@cr', 'plugin-uts-ns')]);
    writeAs(join(work, '.config', 'config.cjs'), leavesMarker('{}'));
    writeAs(join(shared, 'node_modules', '@cr', 'plugin-uts-ns', 'package.json'), '{"name": "@cr/plugin-uts-ns", "main": "index.js"}');
    writeAs(join(shared, 'node_modules', '@cr', 'plugin-uts-ns', 'index.js'), leavesMarker('{}'));
    const r = cr(['types'], work);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^uts-ns\s+1\s+@cr\/plugin-uts-ns\s/m);
    expect(existsSync(marker)).toBe(false);
  });
});
