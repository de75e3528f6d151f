import type { Kernel } from '../kernel/kernel.js';
import type { NamespaceHandle } from '../kernel/namespaces.js';
import type { DefaultDecision } from './contract.js';

/**
 * For namespace plugins: a process in the namespace cr itself runs in (the host's) is restored
 * into the restoring cr's namespace, not into a copy, so such a namespace (and what is in it) is
 * external unless a rule says otherwise, as CRIU leaves namespaces alone that are not the
 * process's own.
 */
export function ownNamespaceDefault(kernel: Kernel, ns: NamespaceHandle): { defaultDecision?: DefaultDecision } {
  return kernel.namespaces.isOwn(ns) ? { defaultDecision: { decision: 'external', why: "cr's own namespace" } } : {};
}
