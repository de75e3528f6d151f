export * from './object-plugin.js';
export { ipcObjectShape } from './record.js';
export type { StandIn } from './external.js';
