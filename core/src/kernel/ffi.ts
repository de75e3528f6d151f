import { createRequire } from 'node:module';
import type * as Koffi from 'koffi';

/** The koffi module. */
export type Ffi = typeof Koffi;

const requireHere = createRequire(import.meta.url);
const declarers: Array<(koffi: Ffi) => void> = [];
let loaded: Ffi | undefined;

/**
 * koffi, loaded at its first use, with every C type `declareTypes` was given declared. Loading it
 * (its addon and its JavaScript) is 4-11 ms of a command, which those that make no kernel call
 * (types, inspect, help) need not pay; and the modules of cr's kernel layer evaluate without it.
 */
export function ffi(): Ffi {
  if (loaded) return loaded;
  const koffi = requireHere('koffi') as Ffi;
  for (const declare of declarers) declare(koffi);
  loaded = koffi;
  return koffi;
}

/**
 * Declares C types by name (koffi.struct, koffi.alias …) once koffi is loaded; a module of the
 * kernel layer exports the names, which koffi takes wherever it takes a type.
 */
export function declareTypes(declare: (koffi: Ffi) => void): void {
  if (loaded) declare(loaded);
  else declarers.push(declare);
}

/**
 * An object whose members `declare` makes at their first use, each once: the libc functions cr
 * binds (a call to `lib.func`) are made as a command first calls them, not all as it starts.
 */
export function onFirstUse<T extends object>(declare: { [K in keyof T]: () => T[K] }): T {
  const members = {} as T;
  for (const key of Object.keys(declare) as Array<keyof T>) {
    Object.defineProperty(members, key, {
      configurable: true,
      enumerable: true,
      get() {
        const value = declare[key]();
        Object.defineProperty(members, key, { value, enumerable: true });
        return value;
      },
    });
  }
  return members;
}
