import { loadBundle } from './bundle-loader.cjs';

/** oclif's explicit command discovery (package.json oclif.commands) requires this: the commands of the bundle bin/run.js loaded. */
export const COMMANDS = loadBundle().COMMANDS;
