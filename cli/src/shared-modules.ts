import { readFileSync } from 'node:fs';
import { register } from 'node:module';

let registered = false;

/**
 * Makes plugins from outside cr's install import the bundle's copies of what they share with cr
 * (see shared-modules-hook.ts). Needed only before such a plugin is loaded: the hook runs in a
 * thread of its own, which a command with only the built-in plugins does not start.
 */
export function shareBundledModules(): void {
  if (registered) return;
  registered = true;
  // Package name → the bundle's module for it, written by scripts/bundle.js next to the bundle.
  const files = JSON.parse(readFileSync(new URL('./bundle/shared-modules.json', import.meta.url), 'utf8')) as Record<string, string>;
  const data = { files: Object.fromEntries(Object.entries(files).map(([spec, file]) => [spec, new URL(`./bundle/${file}`, import.meta.url).href])), parentURL: import.meta.url };
  register('./shared-modules-hook.js', import.meta.url, { data });
}
