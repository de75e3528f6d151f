import type { ZodError } from 'zod';

/** `policy.rules[0].decision` from a zod issue path. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else out += out ? `.${String(part)}` : String(part);
  }
  return out || '(top level)';
}

function valueAt(data: unknown, path: readonly PropertyKey[]): unknown {
  let value = data;
  for (const part of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[part];
  }
  return value;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * One line per problem, each naming the key path, what was found there and what was expected:
 * `at "checkpoint.only[1]": found 42; expected a string`. `prefix` is where `data` sits in a larger
 * document (`pluginOptions.TYPE`), named in front of every path.
 */
export function describeZodError(error: ZodError, data: unknown, prefix: readonly PropertyKey[] = []): string[] {
  return error.issues.map((issue) => {
    const at = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => `"${k}"`).join(', ');
      return `at "${formatPath(at)}": found unknown key ${keys}; expected only the documented keys (see .crrc.example)`;
    }
    if (issue.code === 'invalid_key') {
      // A bad name of a record's entry (a profile name): name the key itself, and what a key must be.
      const key = String(issue.path[issue.path.length - 1]);
      return `at "${formatPath(at.slice(0, -1))}": found the key "${key}"; expected ${issue.issues.map((i) => i.message).join('; ')}`;
    }
    const expected = issue.message.replace(/^Invalid input: /, '').replace(/^Invalid option: /, '');
    return `at "${formatPath(at)}": found ${show(valueAt(data, issue.path))}; ${expected}`;
  });
}
