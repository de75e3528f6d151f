import type { InitializeHook, ResolveHook } from 'node:module';

/**
 * A module resolve hook (node:module register), run in node's loader thread. The CLI's bundle
 * holds its own copies of @cr/core, the built-in plugins and the libraries a plugin shares with
 * cr (zod, tsyringe); a plugin from outside imports them by name. This sends each such import to
 * the bundle's copy, so that the plugin and cr share one of each (one container, the same
 * classes as injection tokens), as they do without a bundle. An import is sent there only when it
 * resolves to the very module cr was built from: a plugin with a copy of its own keeps it.
 */

interface SharedModules {
  /** Specifier (`zod`, `@cr/core/engine`) → the URL of the bundle's module that exports the same. */
  files: Record<string, string>;
  /** Where cr's own imports of them resolve from. */
  parentURL: string;
}

let shared: SharedModules = { files: {}, parentURL: '' };
/** The URL each specifier resolves to from cr's install, as an ES module import → the bundle's module; found at the first import. */
let byUrl: Promise<Map<string, string>> | undefined;

export const initialize: InitializeHook<SharedModules> = (data) => {
  shared = data;
};

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  byUrl ??= Promise.all(
    Object.entries(shared.files).map(async ([spec, file]) => [(await nextResolve(spec, { ...context, parentURL: shared.parentURL })).url, file] as const),
  ).then((pairs) => new Map(pairs));
  const resolved = await nextResolve(specifier, context);
  const url = (await byUrl).get(resolved.url);
  return url === undefined ? resolved : { ...resolved, url, shortCircuit: true };
};
