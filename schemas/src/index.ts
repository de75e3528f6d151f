export * from './config.js';
export * from './manifest.js';
export * from './records/uts-ns.js';
export * from './records/ipc-ns.js';
export * from './records/sysvipc.js';
