/**
 * The plugins cr ships with, which the CLI and the library load by default, each imported by its
 * package name from cr's own install (this package's dependencies), in this order. Written out as
 * imports, not names looked up at run time, so that a bundle (the CLI's) can hold them.
 */
export const BUILTIN_PLUGIN_MODULES = {
  '@cr/plugin-tasks': () => import('@cr/plugin-tasks'),
  '@cr/plugin-mm': () => import('@cr/plugin-mm'),
  '@cr/plugin-files': () => import('@cr/plugin-files'),
  '@cr/plugin-pipes': () => import('@cr/plugin-pipes'),
  '@cr/plugin-ttys': () => import('@cr/plugin-ttys'),
  '@cr/plugin-shmem': () => import('@cr/plugin-shmem'),
  '@cr/plugin-eventfd': () => import('@cr/plugin-eventfd'),
  '@cr/plugin-signalfd': () => import('@cr/plugin-signalfd'),
  '@cr/plugin-timerfd': () => import('@cr/plugin-timerfd'),
  '@cr/plugin-file-locks': () => import('@cr/plugin-file-locks'),
  '@cr/plugin-inotify': () => import('@cr/plugin-inotify'),
  '@cr/plugin-posix-timers': () => import('@cr/plugin-posix-timers'),
  '@cr/plugin-unix-sockets': () => import('@cr/plugin-unix-sockets'),
  '@cr/plugin-inet-sockets': () => import('@cr/plugin-inet-sockets'),
  '@cr/plugin-netlink-sockets': () => import('@cr/plugin-netlink-sockets'),
  '@cr/plugin-pidfds': () => import('@cr/plugin-pidfds'),
  '@cr/plugin-epoll': () => import('@cr/plugin-epoll'),
  '@cr/plugin-uts-ns': () => import('@cr/plugin-uts-ns'),
  '@cr/plugin-ipc-ns': () => import('@cr/plugin-ipc-ns'),
  '@cr/plugin-sysvipc-shm': () => import('@cr/plugin-sysvipc-shm'),
  '@cr/plugin-sysvipc-msg': () => import('@cr/plugin-sysvipc-msg'),
  '@cr/plugin-sysvipc-sem': () => import('@cr/plugin-sysvipc-sem'),
} as const;

/** The built-in plugins' package names, in the order they are loaded. */
export const BUILTIN_PLUGINS = Object.keys(BUILTIN_PLUGIN_MODULES) as readonly (keyof typeof BUILTIN_PLUGIN_MODULES)[];
