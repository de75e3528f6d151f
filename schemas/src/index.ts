export * from './config.js';
export * from './advice.js';
export * from './manifest.js';
export * from './primitives.js';
