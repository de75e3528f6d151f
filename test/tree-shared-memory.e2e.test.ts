import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Cleanup, tempDir } from './helpers/cli.js';
import { compileFixture, lines, waitFor } from './helpers/processes.js';
import { checkpointAndRestore, descendants, linesMatching, startLogged } from './helpers/trees.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let bin: string;
beforeAll(() => {
  bin = tempDir('cr-tree-shm-bin-');
  compileFixture('sharedmem', bin);
});
afterAll(() => cleanup.dir(bin) && cleanup.run());

/** The counts of `name` ("anon" or "memfd") in the order they were printed, with who printed each. */
const turns = (out: string, name: string) => linesMatching(out, new RegExp(`^${name} `)).map((l) => l.split(' ').slice(1));

describe('memory shared between the processes of a tree', () => {
  it('shared anonymous memory and a memfd mapped by parent and child stay shared: each still sees what the other writes', async () => {
    const dir = cleanup.dir(tempDir());
    const out = join(dir, 'out.txt');
    const root = await startLogged(cleanup, join(bin, 'sharedmem'), [], out);
    cleanup.orphan(descendants(root.pid!)[0]!);
    await waitFor('a few turns', () => (turns(out, 'memfd').length >= 6 ? true : undefined));
    await checkpointAndRestore(cleanup, root, join(dir, 'img'));
    const before = lines(out).length;
    // Each turn is handed over through memory: no turns after restore unless it is still shared.
    await waitFor('twenty more turns of each', () => (['anon', 'memfd'].every((name) => turns(out, name).length >= before / 2 + 20) ? true : undefined));
    for (const name of ['anon', 'memfd']) {
      const seen = turns(out, name);
      expect(seen.map(([, n]) => Number(n))).toEqual(seen.map((_, i) => i + 1));
      expect(seen.map(([who]) => who)).toEqual(seen.map((_, i) => (i % 2 === 0 ? 'parent' : 'child')));
    }
  });
});
