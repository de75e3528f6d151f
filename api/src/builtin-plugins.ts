/**
 * The plugins cr ships with, which the CLI and the library load by default. They are loaded by
 * package name, exactly like third-party ones, from cr's own install (this package's
 * dependencies).
 */
export const BUILTIN_PLUGINS = [
  '@cr/plugin-tasks',
  '@cr/plugin-mm',
  '@cr/plugin-files',
  '@cr/plugin-pipes',
  '@cr/plugin-ttys',
  '@cr/plugin-shmem',
  '@cr/plugin-eventfd',
  '@cr/plugin-signalfd',
  '@cr/plugin-timerfd',
  '@cr/plugin-file-locks',
  '@cr/plugin-inotify',
  '@cr/plugin-posix-timers',
  '@cr/plugin-unix-sockets',
  '@cr/plugin-inet-sockets',
  '@cr/plugin-epoll',
  '@cr/plugin-uts-ns',
  '@cr/plugin-ipc-ns',
  '@cr/plugin-sysvipc-shm',
  '@cr/plugin-sysvipc-msg',
  '@cr/plugin-sysvipc-sem',
] as const;
