import type { CrConfig } from '@cr/schemas';

/** What cr does with no config file and no flags: save every resource type it has a plugin for. */
export const DEFAULT_CONFIG: CrConfig = {
  plugins: [],
  checkpoint: { only: [], exclude: [] },
  policy: { default: 'include', rules: [] },
};
