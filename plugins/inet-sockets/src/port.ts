import { AF_INET, AF_INET6, KernelError, type Kernel, type SocketAddress } from '@cr/core';

const EADDRINUSE = 98;

/**
 * Binds a restored socket to its saved address. A TCP port taken only by connections no process
 * holds any more — the killed program's, in TIME_WAIT or closing, which a listener without
 * SO_REUSEADDR cannot share its port with for a minute — is reclaimed: they are ended
 * (SOCK_DESTROY) and the bind is tried again. A port some process holds a socket on is left
 * alone, and the bind fails.
 */
export function bindReclaiming(kernel: Kernel, fd: number, address: SocketAddress & { port: number }, tcp: boolean, target: string): void {
  try {
    kernel.sockets.bind(fd, address, target);
    return;
  } catch (err) {
    if (!tcp || !(err instanceof KernelError && err.errno === EADDRINUSE)) throw err;
    const use = kernel.sockDiag.tcpPort(address.port, [AF_INET, AF_INET6]);
    if (use.held > 0 || use.orphans.length === 0) throw err;
    for (const { family, id } of use.orphans) kernel.sockDiag.destroyTcp(family, id);
  }
  kernel.sockets.bind(fd, address, target);
}
