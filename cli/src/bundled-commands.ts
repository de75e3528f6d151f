import { loadBundle } from './bundle-loader.js';

/** oclif's explicit command discovery (package.json oclif.commands) imports this: the commands of the bundle bin/run.js loaded. */
export const COMMANDS = loadBundle().COMMANDS;
