import type { InitializeHook, ResolveHook } from 'node:module';

/**
 * A module resolve hook (node:module register), run in node's loader thread. The CLI's bundle
 * holds its own copies of @cr/core, the built-in plugins and the libraries a plugin shares with
 * cr (zod, tsyringe); a plugin from outside imports them by name. This sends each such import to
 * the bundle's copy, so that the plugin and cr share one of each (one container, the same
 * classes as injection tokens), as they do without a bundle.
 */

/** The original module's URL → the URL of the bundle's module that exports the same. */
let shared: Record<string, string> = {};

export const initialize: InitializeHook<{ shared: Record<string, string> }> = (data) => {
  shared = data.shared;
};

export const resolve: ResolveHook = async (specifier, context, nextResolve) => {
  const resolved = await nextResolve(specifier, context);
  const url = shared[resolved.url];
  return url === undefined ? resolved : { ...resolved, url, shortCircuit: true };
};
