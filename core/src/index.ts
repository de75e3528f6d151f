/**
 * @cr/core — the plugin API: everything a plugin may use of cr, and nothing else (docs/plugins.md).
 * The contract types, the injected kernel services with the types they take and give, errors,
 * helpers for records, blobs, selectors and references to other types' objects. What drives cr
 * (engines, registry, loader, policy, image, config) is the other entry point, `@cr/core/engine`.
 */
import 'reflect-metadata';

/** Plugins take these from here, so that they and cr share one tsyringe. */
export { inject, injectable, singleton } from 'tsyringe';

export * from './plugin/contract.js';
export type { LogFn, Logger } from './log/logger.js';
export { ownNamespaceDefault } from './plugin/own-namespace.js';
export { IPC_NS_TARGET, ObjectType, PROCESS_TARGET, objectType } from './plugin/references.js';
export { describeSelector, matchesSelector } from './policy/policy.js';
export { blobProblems } from './image/record-checks.js';
export {
  SharedDescriptions,
  descriptionProblems,
  descriptionsOf,
  holderProblems,
  installDescription,
  isAnonInode,
  type DescriptionHolder,
  type DescriptorNumber,
  type OpenDescription,
  type SharedDescription,
} from './plugin/fd-descriptions.js';
export type { ProcessTargetHandle, IpcNsTargetHandle } from './engine/targets.js';
export * from './errors.js';
export { Kernel, SHARED_TABLES, type SharedTable } from './kernel/kernel.js';
export type { TimerfdState } from './kernel/event-fds.js';
export type { FileLock, FileLockKind, LockRequest } from './kernel/file-locks.js';
export { AF_INET, AF_INET6, AF_UNIX, SOCK_DGRAM, SOCK_SEQPACKET, SOCK_STREAM, SOL_SOCKET, Sockets, socketInode, withFd, type SocketAddress, type SocketKind, type SocketQueue, closeQueue, shutdownHow, type Credentials, type SocketMessage, type SocketBuffers } from './kernel/sockets.js';
export { AF_NETLINK, NETLINK_FLAG_OPTIONS, NetlinkSockets, type NetlinkFlagOption, type NetlinkQueue, type NetlinkState } from './kernel/netlink-sockets.js';
export { Inotify, inotifyWatches, type InotifyWatch, type InotifyWatchInfo } from './kernel/inotify.js';
export type { InetDiagSockId, InetListenerDiag, SockDiag, TcpPortUse, UnixSocketDiag } from './kernel/sock-diag.js';
export type { TcpConnectionState, TcpRepair, TcpWindow } from './kernel/tcp-repair.js';
export type { ConnectionBlocks, ConnectionEnd, HeldBlock } from './kernel/connection-blocks.js';
export { Directory } from './kernel/directory.js';
export { Ttys, type PtyEnd, type PtyState, type Termios, type WindowSize } from './kernel/ttys.js';
export { KernelError, errnoName } from './kernel/kernel-error.js';
export { NAMESPACE_FLAGS, NamespaceHandle, Namespaces, type NamespaceKind } from './kernel/namespaces.js';
export type { FeatureResult } from './kernel/features.js';
export { SysvIpc, SHM_DEST, SHM_LOCKED, hex, type IpcInfoOf, type IpcKind, type IpcObjectInfo, type IpcOwnership, type MsgInfo, type QueuedMessage, type SemInfo, type ShmInfo } from './kernel/sysvipc.js';
export type { ShmMapping, SyscallArg } from './kernel/libc.js';
export { REGISTER_NAMES, SOCK_FILTER_SIZE, type RegisterName, type Registers, type RseqConfiguration, type SeccompFilter } from './kernel/ptrace.js';
export { withoutRestartBlock } from './kernel/return-frame.js';
export { RemoteTask, type AltStack, type ItimerValue, type PosixTimerNotification, type PosixTimerSetting, type SignalAction } from './kernel/remote-task.js';
export { TASK_READS, type TaskRead } from './kernel/task-reads.js';
export { TaskReads } from './kernel/reads-across.js';
export type { MmMap } from './kernel/mm-map.js';
export type { StoppedSyscall, SyscallName } from './kernel/stopped-syscall.js';
export type { Mapping, Vma } from './kernel/proc-maps.js';
export { SEALS } from './kernel/shmem.js';
export { PAGE_SIZE, type PageRange, type PageRun, type PageSelection } from './kernel/pagemap.js';
export type { FilePageRun, SourceFile } from './kernel/file-into-task.js';
export type { WriteTracker } from './kernel/userfaultfd.js';
export type { ByteRange } from './kernel/libc.js';
export type { FdInfo, MmBounds, ProcessStat, ProcessStatus, ResourceLimit } from './kernel/procfs.js';
export { exitedLeaderThread, procDir } from './kernel/proc-dir.js';
export { FS_MAGIC, classifyFd, type FdIdentity, type FdKind, type FdStat, type OpaqueFdKind, type ReopenableFdKind } from './kernel/fd-kind.js';
export * from './kernel/syscalls.js';
export { readRegions, writeRegions, type FileRegion } from './io/file-regions.js';
export { makeDeletedFile, type DeletedFile } from './io/deleted-file.js';
export { aioRingHeader, rebuildAioRing } from './kernel/aio-ring.js';
