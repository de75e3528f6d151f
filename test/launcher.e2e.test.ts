import { spawnSync } from 'node:child_process';
import { symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, REPO, tempDir } from './helpers/cli.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const BIN = join(REPO, 'cli', 'bin', 'run.js');

describe("cr's launcher (cli/bin/run.js run as a command, as npm links it)", () => {
  it('runs node without NODE_EXTRA_CA_CERTS, which node would read as it starts, and passes every argument on as it was given', () => {
    const dir = cleanup.dir(tempDir());
    // node warns at start-up, before any of cr runs, when it cannot read the file.
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: join(dir, 'no-such-ca.pem') };
    const byNode = spawnSync(process.execPath, [BIN, '--version'], { env, encoding: 'utf8' });
    expect(byNode.stderr).toContain('Ignoring extra certs');

    const link = join(dir, 'cr');
    symlinkSync(BIN, link);
    const version = spawnSync(link, ['--version'], { env, encoding: 'utf8' });
    expect(version.stderr).toBe('');
    expect(version.status).toBe(0);
    expect(version.stdout).toMatch(/^@cr\/cli\/\S+ linux-/);

    const odd = join(dir, 'an image "with" $HOME and  two spaces');
    const refused = spawnSync(link, ['restore', '-D', odd], { env, encoding: 'utf8' });
    expect(refused.stderr).toBe(`cr: no image at ${odd}: the directory does not exist\n`);
    expect(refused.status).toBe(4);
  });
});
