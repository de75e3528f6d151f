import { CrError, ExitCode, PluginError } from '@cr/core';
import { Policy, PluginRegistry, typedRules, typedValue, untypedAttributes, type PolicySubject } from '@cr/core/engine';
import type { PolicyRule } from '@cr/schemas';
import { describe, expect, it } from 'vitest';
import { fakePlugin, selectorRegistry } from './fake-plugin.js';

const registry = selectorRegistry();

function typingError(rule: PolicyRule, source = 'flag --exclude'): CrError {
  try {
    typedRules([{ rule, source }], registry);
  } catch (err) {
    return err as CrError;
  }
  throw new Error(`${JSON.stringify(rule)} was accepted`);
}

describe('attribute types', () => {
  it('uint: decimal or hex, non-negative, exact', () => {
    expect(typedValue('uint', '3')).toEqual({ value: 3 });
    expect(typedValue('uint', '0x10')).toEqual({ value: 16 });
    expect(typedValue('uint', 7)).toEqual({ value: 7 });
    for (const bad of ['abc', '-1', '1.5', '', '3x', '99999999999999999999', -1, 2.5]) {
      expect(typedValue('uint', bad), String(bad)).toEqual({ problem: 'must be an unsigned integer, in decimal or 0x hex' });
    }
  });

  it('lineage: a selector gives one PID, as a uint; collected, it is PIDs separated by spaces', () => {
    expect(typedValue('lineage', '0x10')).toEqual({ value: 16 });
    expect(typedValue('lineage', '1 2')).toEqual({ problem: 'must be an unsigned integer, in decimal or 0x hex' });
    expect(untypedAttributes({ subtree: '10 20 30' }, { subtree: 'lineage' })).toEqual([]);
    expect(untypedAttributes({ subtree: '10' }, { subtree: 'lineage' })).toEqual([]);
    expect(untypedAttributes({ subtree: 10 }, { subtree: 'lineage' })).toEqual(['subtree 10 (PIDs separated by spaces)']);
    expect(untypedAttributes({ subtree: '10,20' }, { subtree: 'lineage' })).toEqual(['subtree "10,20" (PIDs separated by spaces)']);
  });

  it('key: every spelling of one key is "0x%08x", up to 0xffffffff', () => {
    for (const raw of ['0xcc6703ec', '0XCC6703EC', '3429303276', 3429303276]) expect(typedValue('key', raw), String(raw)).toEqual({ value: '0xcc6703ec' });
    expect(typedValue('key', '0')).toEqual({ value: '0x00000000' });
    expect(typedValue('key', '0xffffffff')).toEqual({ value: '0xffffffff' });
    for (const bad of ['0x100000000', '4294967296', 'zz', '']) {
      expect(typedValue('key', bad), bad).toEqual({ problem: 'must be an unsigned 32-bit IPC key, 0 to 0xffffffff, in hex or decimal' });
    }
  });

  it('key: the signed form /proc/sysvipc prints is refused, saying which key it is', () => {
    expect(typedValue('key', '-865664020')).toEqual({ problem: 'must be unsigned: -865664020 is how /proc/sysvipc shows key 0xcc6703ec; write 0xcc6703ec' });
    expect(typedValue('key', -1)).toEqual({ problem: 'must be unsigned: -1 is how /proc/sysvipc shows key 0xffffffff; write 0xffffffff' });
  });

  it('string: any text; oneOf: only its words', () => {
    expect(typedValue('string', '/var/log/*')).toEqual({ value: '/var/log/*' });
    expect(typedValue({ oneOf: ['uts', 'ipc'] }, 'ipc')).toEqual({ value: 'ipc' });
    expect(typedValue({ oneOf: ['uts', 'ipc'] }, 'utz')).toEqual({ problem: 'must be one of uts, ipc' });
  });
});

describe('selectors typed by the plugins', () => {
  it('a type offers what its plugin declares, a namespace type its kind too, a group what all its types share', () => {
    expect(registry.selectableBy('sysvipc-shm')).toEqual({ id: 'uint', key: 'key', size: 'uint' });
    expect(Object.keys(registry.selectableBy('uts-ns'))).toEqual(['inode', 'kind']);
    expect(registry.selectableBy('sysvipc')).toEqual({ id: 'uint', key: 'key' });
    expect(Object.keys(registry.selectableBy('namespaces'))).toEqual(['inode', 'kind']);
  });

  it('types every value of a selector, from flags, files and advice alike', () => {
    const [typed] = typedRules([{ rule: { type: 'sysvipc', match: { key: '4660', id: '0x2' }, decision: 'include' }, source: 'file /x/.crrc' }], registry);
    expect(typed).toEqual({ rule: { type: 'sysvipc', match: { key: '0x00001234', id: 2 }, decision: 'include' }, source: 'file /x/.crrc' });
    expect(typedRules([{ rule: { type: 'ipc-ns', decision: 'exclude' }, source: 's' }], registry)[0]!.rule).toEqual({ type: 'ipc-ns', decision: 'exclude' });
  });

  it('an unknown attribute is a usage error that names the selector, its source and the valid attributes', () => {
    const err = typingError({ type: 'sysvipc-shm', match: { kye: '1' }, decision: 'exclude' });
    expect(err.exitCode).toBe(ExitCode.Usage);
    expect(err.message).toBe(
      'flag --exclude: sysvipc-shm:kye=1: sysvipc-shm objects have no attribute "kye"; select them by id (unsigned integer), key (IPC key, e.g. 0x0000abcd), size (unsigned integer)',
    );
  });

  it('an ill-typed value is an error too: exit 2 from a flag, 3 from a config file or advice', () => {
    expect(typingError({ type: 'files', match: { fd: 'abc' }, decision: 'exclude' }).message).toBe('flag --exclude: files:fd=abc: fd must be an unsigned integer, in decimal or 0x hex');
    const fromFile = typingError({ type: 'sysvipc', match: { key: 'zz' }, decision: 'exclude' }, 'file /x/.crrc');
    expect(fromFile.exitCode).toBe(ExitCode.Config);
    expect(fromFile.message).toMatch(/^file \/x\/\.crrc: sysvipc:key=zz: key must be an unsigned 32-bit IPC key/);
    expect(typingError({ type: 'namespaces', match: { kind: 'utz' }, decision: 'include' }, 'advice /run/cr/advice/1-2.json').exitCode).toBe(ExitCode.Config);
  });

  it('an attribute only some types of a group have cannot select the group', () => {
    expect(typingError({ type: 'sysvipc', match: { size: '4096' }, decision: 'exclude' }).message).toBe(
      'flag --exclude: sysvipc:size=4096: sysvipc objects have no attribute "size"; select them by id (unsigned integer), key (IPC key, e.g. 0x0000abcd)',
    );
  });

  it('an unknown type names the installed types and groups', () => {
    expect(typingError({ type: 'sysvipc-shn', decision: 'exclude' }).message).toMatch(/^flag --exclude: unknown resource type "sysvipc-shn"; installed types: .*sysvipc-shm.*; groups: namespaces, sysvipc \(see cr types\)$/);
  });

  it('a type whose plugin declares no attributes can be selected only as a whole', () => {
    const bare = new PluginRegistry();
    bare.register(fakePlugin('hello'), 'hello-pkg');
    expect(() => typedRules([{ rule: { type: 'hello', match: { pid: '1' }, decision: 'exclude' }, source: 'flag --exclude' }], bare)).toThrowError(
      'flag --exclude: hello:pid=1: hello objects have no attribute "pid"; its plugin declares no attributes to select them by, so select the type as a whole: hello',
    );
  });

  it('a plugin declaring a malformed attribute is refused when it is loaded', () => {
    const r = new PluginRegistry();
    expect(() => r.register(fakePlugin('odd', { selectableBy: { fd: 'integer' as 'uint' } }), 'odd-pkg')).toThrowError(PluginError);
    expect(() => r.register(fakePlugin('odd', { selectableBy: { 'Bad-Name': 'uint' } }), 'odd-pkg')).toThrowError(/selectableBy names "Bad-Name"/);
    expect(() => r.register(fakePlugin('odd', { selectableBy: { kind: { oneOf: [] } } }), 'odd-pkg')).toThrowError(/selectableBy.kind/);
  });
});

describe('selectors that match nothing', () => {
  const objects: PolicySubject[] = [
    { type: 'sysvipc-shm', groups: ['sysvipc'], attributes: { id: 0, key: '0xcc6703ec', size: 4096 } },
    { type: 'files', attributes: { pid: 7, fd: 1, path: '/var/log/app.log' } },
  ];

  it('are the object rules no collected object matches; type rules never count', () => {
    const rules = typedRules(
      [
        { rule: { type: 'sysvipc-shm', match: { key: '0xCC6703EC' }, decision: 'include' }, source: 'flag --include' },
        { rule: { type: 'sysvipc', match: { key: '0x1' }, decision: 'exclude' }, source: 'flag --exclude' },
        { rule: { type: 'files', match: { path: '/var/log/*' }, decision: 'exclude' }, source: 'file f' },
        { rule: { type: 'files', match: { path: '/srv/*' }, decision: 'exclude' }, source: 'file f' },
        { rule: { type: 'sysvipc-msg', decision: 'exclude' }, source: 'flag --exclude' },
      ],
      registry,
    );
    const unmatched = new Policy('include', 'default', rules).unmatched(objects);
    expect(unmatched.map((r) => [r.rule.type, r.rule.match])).toEqual([
      ['sysvipc', { key: '0x00000001' }],
      ['files', { path: '/srv/*' }],
    ]);
  });
});
