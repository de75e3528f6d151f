import { PLUGIN_API_VERSION, TARGET_PROCESS, type ResourcePlugin } from '@cr/core';
import { z } from 'zod';

/** A plugin that does nothing unless a test overrides its parts. */
export function fakePlugin(type: string, over: Partial<ResourcePlugin> = {}): ResourcePlugin {
  return {
    apiVersion: PLUGIN_API_VERSION,
    type,
    version: 1,
    description: type,
    collectsFrom: [TARGET_PROCESS],
    recordSchema: z.object({}),
    collect: () => [],
    save: () => ({}),
    restore: () => undefined,
    ...over,
  };
}
