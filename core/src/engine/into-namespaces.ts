import type { Kernel } from '../kernel/kernel.js';
import type { NamespaceHandle, NamespaceKind } from '../kernel/namespaces.js';

/**
 * The existing namespaces a restore was told to go into (`--into-ipc-ns`), opened when first
 * needed and closed when the restore is over. A restored process is placed in them also when its
 * image did not save a namespace of that kind (it was cr's own, or left out).
 */
export class IntoNamespaces {
  private readonly opened = new Map<NamespaceKind, NamespaceHandle>();

  constructor(
    private readonly kernel: Kernel,
    private readonly paths: Readonly<Partial<Record<NamespaceKind, string>>>,
  ) {}

  all(): Partial<Record<NamespaceKind, NamespaceHandle>> {
    for (const [kind, path] of Object.entries(this.paths) as [NamespaceKind, string][]) {
      if (!this.opened.has(kind)) this.opened.set(kind, this.kernel.namespaces.fromPath(path, kind));
    }
    return Object.fromEntries(this.opened);
  }

  close(): void {
    for (const ns of this.opened.values()) ns.close();
    this.opened.clear();
  }
}
