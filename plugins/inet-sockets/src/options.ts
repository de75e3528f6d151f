import type { SOCKET_OPTION_NAMES } from './record.js';

const SOL_SOCKET = 1;
const IPPROTO_TCP = 6;
const IPPROTO_IPV6 = 41;

/** An integer socket option: its level and number, and the sockets it applies to. */
interface SocketOption {
  level: number;
  name: number;
  only?: 'tcp' | 'inet6';
}

/**
 * The options a server sets on its sockets and a restored one must have again; each is read
 * with getsockopt(2) and set with setsockopt(2) before the socket is bound.
 */
export const SOCKET_OPTIONS: Readonly<Record<(typeof SOCKET_OPTION_NAMES)[number], SocketOption>> = {
  reuseaddr: { level: SOL_SOCKET, name: 2 },
  reuseport: { level: SOL_SOCKET, name: 15 },
  keepalive: { level: SOL_SOCKET, name: 9 },
  broadcast: { level: SOL_SOCKET, name: 6 },
  v6only: { level: IPPROTO_IPV6, name: 26, only: 'inet6' },
  nodelay: { level: IPPROTO_TCP, name: 1, only: 'tcp' },
  deferAccept: { level: IPPROTO_TCP, name: 9, only: 'tcp' },
  keepIdle: { level: IPPROTO_TCP, name: 4, only: 'tcp' },
  keepInterval: { level: IPPROTO_TCP, name: 5, only: 'tcp' },
  keepCount: { level: IPPROTO_TCP, name: 6, only: 'tcp' },
  userTimeout: { level: IPPROTO_TCP, name: 18, only: 'tcp' },
};

export const appliesTo = (option: SocketOption, protocol: 'tcp' | 'udp', family: 'inet' | 'inet6') =>
  option.only === undefined || option.only === protocol || option.only === family;
