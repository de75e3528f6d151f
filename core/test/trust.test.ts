import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, PluginError } from '@cr/core';
import {
  PluginRegistry,
  SAFE_DIRECTORIES_ENV,
  assertTrustedFile,
  createCrContainer,
  describeOwners,
  listedSafe,
  loadConfigFile,
  loadPlugins,
  ownershipProblem,
  untrustedReason,
} from '@cr/core/engine';
import { afterEach, describe, expect, it } from 'vitest';

/** A uid no file of this machine is expected to belong to: "another user". */
const OTHER = 64_123;

let dir: string;
const made: string[] = [];
afterEach(() => {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
});
const fresh = () => {
  dir = mkdtempSync(join(tmpdir(), 'cr-trust-'));
  made.push(dir);
  return dir;
};

describe('ownershipProblem', () => {
  it('accepts the listed owners when neither group nor others can write', () => {
    expect(ownershipProblem({ uid: 0, mode: 0o40755 }, [0])).toBeUndefined();
    expect(ownershipProblem({ uid: 1000, mode: 0o100600 }, [0, 1000])).toBeUndefined();
  });

  it('names the owner, and who else can write', () => {
    expect(ownershipProblem({ uid: 1001, mode: 0o100644 }, [0, 1000])).toBe('belongs to uid 1001, not to root or uid 1000');
    expect(ownershipProblem({ uid: 0, mode: 0o100664 }, [0])).toBe('is writable by its group (mode 0664)');
    expect(ownershipProblem({ uid: 0, mode: 0o40777 }, [0])).toBe('is writable by others (mode 0777)');
  });

  it('accepts a sticky world-writable directory only where that is asked for', () => {
    expect(ownershipProblem({ uid: 0, mode: 0o41777 }, [0])).toBe('is writable by others (mode 1777)');
    expect(ownershipProblem({ uid: 0, mode: 0o41777 }, [0], { stickyAllowed: true })).toBeUndefined();
    expect(ownershipProblem({ uid: 0, mode: 0o40777 }, [0], { stickyAllowed: true })).toBe('is writable by others and not sticky (mode 0777)');
  });

  it('describes owners once each', () => {
    expect(describeOwners([0, 0])).toBe('root');
    expect(describeOwners([0, 42])).toBe('root or uid 42');
  });
});

describe('untrustedReason', () => {
  it('trusts a file of root in a directory of root that no one else can write', () => {
    writeFileSync(join(fresh(), 'cr.config.cjs'), 'module.exports = {};');
    expect(untrustedReason(join(dir, 'cr.config.cjs'), 0)).toBeUndefined();
  });

  it('trusts the invoking user\'s own files, and no other user\'s', () => {
    const file = join(fresh(), '.crrc.json');
    writeFileSync(file, '{}');
    chownSync(dir, OTHER, OTHER);
    chownSync(file, OTHER, OTHER);
    expect(untrustedReason(file, OTHER)).toBeUndefined();
    expect(untrustedReason(file, 0)).toBe(`it belongs to uid ${OTHER}, not to root`);
  });

  it('refuses a file anyone can write, or one in a directory others can write, sticky or not', () => {
    const file = join(fresh(), '.crrc.json');
    writeFileSync(file, '{}');
    chmodSync(file, 0o666);
    expect(untrustedReason(file, 0)).toBe('it is writable by others (mode 0666)');
    chmodSync(file, 0o644);
    chmodSync(dir, 0o1777);
    expect(untrustedReason(file, 0)).toBe(`its directory ${dir} is writable by others (mode 1777)`);
  });

  it('checks a symlink both where it points and where it was found', () => {
    const safe = join(fresh(), 'safe');
    const open = join(dir, 'open');
    mkdirSync(safe);
    mkdirSync(open);
    chmodSync(open, 0o777);
    writeFileSync(join(safe, 'cr.config.js'), 'export default {};');
    symlinkSync(join(safe, 'cr.config.js'), join(open, 'cr.config.js'));
    expect(untrustedReason(join(open, 'cr.config.js'), 0)).toBe(`the directory of the symlink, ${open}, is writable by others (mode 0777)`);
    symlinkSync(join(open, 'cr.config.js'), join(safe, 'link.js'));
    expect(untrustedReason(join(safe, 'link.js'), 0)).toBeUndefined();
  });

  it('refuses what is not a regular file', () => {
    execFileSync('mkfifo', [join(fresh(), '.crrc')]);
    expect(untrustedReason(join(dir, '.crrc'), 0)).toBe('it is not a regular file');
  });
});

describe('CR_SAFE_DIRECTORIES', () => {
  it('lists directories (and what is below them), colon-separated, or "*" for any', () => {
    const file = join(fresh(), 'a', 'b', 'x.js');
    mkdirSync(join(dir, 'a', 'b'), { recursive: true });
    writeFileSync(file, '');
    expect(listedSafe(file, {})).toBe(false);
    expect(listedSafe(file, { [SAFE_DIRECTORIES_ENV]: join(dir, 'a', 'b') })).toBe(true);
    expect(listedSafe(file, { [SAFE_DIRECTORIES_ENV]: `/nowhere:${join(dir, 'a')}` })).toBe(true);
    expect(listedSafe(file, { [SAFE_DIRECTORIES_ENV]: `${join(dir, 'a', 'b')}x` })).toBe(false);
    expect(listedSafe(file, { [SAFE_DIRECTORIES_ENV]: join(dir, 'a', 'b', 'c') })).toBe(false);
    expect(listedSafe(file, { [SAFE_DIRECTORIES_ENV]: '*' })).toBe(true);
  });

  it('turns a refusal into an error of the class given, saying how to allow the file', () => {
    const file = join(fresh(), 'plugin.js');
    writeFileSync(file, '');
    chmodSync(dir, 0o777);
    const err = (() => {
      try {
        assertTrustedFile(file, 'plugin x', PluginError, {});
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toBe(
      `refusing to load plugin x ${file}: its directory ${dir} is writable by others (mode 0777); cr loads config files and plugins only if they and their directory ` +
        `belong to root and no one else can write them. If you trust it, allow its directory: ${SAFE_DIRECTORIES_ENV}=${dir} (colon-separated; "*" allows any)`,
    );
    expect(() => assertTrustedFile(file, 'plugin x', PluginError, { [SAFE_DIRECTORIES_ENV]: dir })).not.toThrow();
  });
});

describe('config files and plugins another user could have written', () => {
  /** A world-writable directory holding `name`, written by another user, and a working directory below it. */
  function planted(name: string, text: string): { top: string; cwd: string } {
    const top = join(fresh(), 'shared');
    mkdirSync(join(top, 'work'), { recursive: true });
    chmodSync(top, 0o1777);
    writeFileSync(join(top, name), text);
    chownSync(join(top, name), OTHER, OTHER);
    return { top, cwd: join(top, 'work') };
  }

  it('a cr.config.cjs above the cwd is refused unrun (exit 3), and runs once its directory is allowed', async () => {
    const marker = join(fresh(), 'ran');
    const { top, cwd } = planted('cr.config.cjs', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = {};`);
    const err = await loadConfigFile({ cwd, env: {} }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).exitCode).toBe(3);
    expect((err as Error).message).toMatch(new RegExp(`^refusing to load config ${join(top, 'cr.config.cjs')}: it belongs to uid ${OTHER}, not to root; .* ${SAFE_DIRECTORIES_ENV}=${top} `));
    expect(existsSync(marker)).toBe(false);
    expect(await loadConfigFile({ cwd, env: { [SAFE_DIRECTORIES_ENV]: top } })).toEqual({ config: {}, filepath: join(top, 'cr.config.cjs') });
    expect(existsSync(marker)).toBe(true);
  });

  it('a .crrc.json listing plugins is refused too; a package.json without a "cr" key is passed over', async () => {
    const { top, cwd } = planted('.crrc.json', '{"plugins": ["./evil.js"]}');
    expect(((await loadConfigFile({ cwd, env: {} }).catch((e: unknown) => e)) as Error).message).toContain(`refusing to load config ${join(top, '.crrc.json')}`);
    rmSync(join(top, '.crrc.json'));
    writeFileSync(join(top, 'package.json'), '{"name": "not-cr"}');
    chownSync(join(top, 'package.json'), OTHER, OTHER);
    expect(await loadConfigFile({ cwd, env: {} })).toEqual({ config: {} });
  });

  it('cosmiconfig\'s meta config in the cwd (.config/config.cjs) is never run', async () => {
    const marker = join(fresh(), 'ran');
    mkdirSync(join(dir, 'cwd', '.config'), { recursive: true });
    writeFileSync(join(dir, 'cwd', '.config', 'config.cjs'), `require('fs').writeFileSync(${JSON.stringify(marker)}, 'x'); module.exports = {};`);
    expect(await loadConfigFile({ cwd: join(dir, 'cwd'), env: {} })).toEqual({ config: {} });
    expect(existsSync(marker)).toBe(false);
  });

  it('loadPlugins lets its caller refuse a module before it is imported', async () => {
    const marker = join(fresh(), 'ran');
    writeFileSync(join(dir, 'p.mjs'), `import { writeFileSync } from 'node:fs'; writeFileSync(${JSON.stringify(marker)}, 'x'); export default class {}`);
    chmodSync(dir, 0o777);
    const container = createCrContainer();
    const refuse = (path: string, spec: string) => assertTrustedFile(path, `plugin ${spec}`, PluginError, {});
    const err = await loadPlugins(['./p.mjs'], [dir], container, container.resolve(PluginRegistry), refuse).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toMatch(/^refusing to load plugin \.\/p\.mjs .*p\.mjs: its directory .* is writable by others \(mode 0777\)/);
    expect(existsSync(marker)).toBe(false);
  });
});
