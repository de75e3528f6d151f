/**
 * @cr/plugin-kit — what a plugin's tests need: `checkpointAndRestore` runs a real program,
 * checkpoints it with the plugin loaded, kills it, restores it, and hands back the image and the
 * restored process to check. The template `cr plugin new` writes uses it.
 */
export { checkpointAndRestore, type RoundTrip, type RoundTripOptions } from './round-trip.js';
export { scaffoldPlugin, type ScaffoldOptions, type Scaffolded } from './scaffold.js';
