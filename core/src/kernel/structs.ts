import type { TypeObject } from 'koffi';
import { declareTypes, ffi, type Ffi } from './ffi.js';

/**
 * The C structs cr passes to the kernel, each declared once with koffi's struct types (x86_64
 * layouts), and their conversion from and to bytes: for remote syscalls, whose arguments are
 * bytes in the task's memory, and for libc calls. Each is exported by its name, and declared when
 * koffi loads (ffi.ts).
 */

/** A C type as koffi takes it: a declared type's name, or a type object. */
export type CType = string | TypeObject;
type Fields = Record<string, CType>;

/** The struct `name` with `fields` (given koffi when they need its arrays), declared when koffi loads. */
export function declareStruct(name: string, fields: Fields | ((koffi: Ffi) => Fields)): string {
  declareTypes((koffi) => koffi.struct(name, typeof fields === 'function' ? fields(koffi) : fields));
  return name;
}

/** As `declareStruct`, without padding between the fields. */
function declarePacked(name: string, fields: Fields): string {
  declareTypes((koffi) => koffi.pack(name, fields));
  return name;
}

/** stack_t of sigaltstack(2). */
export const stackT = declareStruct('cr_stack_t', { ss_sp: 'uint64_t', ss_flags: 'int', ss_size: 'uint64_t' });

/** The kernel's struct sigaction of rt_sigaction(2) on x86_64 (not libc's: the mask comes last). */
export const kernelSigaction = declareStruct('cr_kernel_sigaction', { handler: 'uint64_t', flags: 'uint64_t', restorer: 'uint64_t', mask: 'uint64_t' });

/** struct rlimit64 of prlimit(2). */
export const rlimit64 = declareStruct('cr_rlimit64', { rlim_cur: 'uint64_t', rlim_max: 'uint64_t' });

const timeval = declareStruct('cr_timeval', { tv_sec: 'int64_t', tv_usec: 'int64_t' });
/** A struct timeval as koffi reads (numbers or bigints) or takes it. */
export interface Timeval {
  tv_sec: number | bigint;
  tv_usec: number | bigint;
}
/** struct itimerval of getitimer(2) and setitimer(2). */
export const itimerval = declareStruct('cr_itimerval', { it_interval: timeval, it_value: timeval });

const timespec = declareStruct('cr_timespec', { tv_sec: 'int64_t', tv_nsec: 'int64_t' });
/** struct itimerspec of timerfd_settime(2). */
export const itimerspec = declareStruct('cr_itimerspec', { it_interval: timespec, it_value: timespec });

/** struct flock of fcntl(2) F_SETLK and F_OFD_SETLK. */
export const flockStruct = declareStruct('cr_flock', { l_type: 'int16_t', l_whence: 'int16_t', l_start: 'int64_t', l_len: 'int64_t', l_pid: 'int32_t' });
/** struct sigevent of timer_create(2) on x86_64 (64 bytes; the thread id of SIGEV_THREAD_ID leads the union). */
export const sigevent = declareStruct('cr_sigevent', (koffi) => ({
  sigev_value: 'uint64_t',
  sigev_signo: 'int32_t',
  sigev_notify: 'int32_t',
  sigev_notify_thread_id: 'int32_t',
  pad: koffi.array('int32_t', 11),
}));

/** struct clone_args of clone3(2) (Linux 5.7+: up to cgroup). */
export const cloneArgs = declareStruct('cr_clone_args', {
  flags: 'uint64_t',
  pidfd: 'uint64_t',
  child_tid: 'uint64_t',
  parent_tid: 'uint64_t',
  exit_signal: 'uint64_t',
  stack: 'uint64_t',
  stack_size: 'uint64_t',
  tls: 'uint64_t',
  set_tid: 'uint64_t',
  set_tid_size: 'uint64_t',
  cgroup: 'uint64_t',
});

/** struct seccomp_metadata of PTRACE_SECCOMP_GET_METADATA. */
export const seccompMetadata = declareStruct('cr_seccomp_metadata', { filter_off: 'uint64_t', flags: 'uint64_t' });

/** struct sock_fprog of seccomp(SECCOMP_SET_MODE_FILTER): how many instructions, and where they are. */
export const sockFprog = declareStruct('cr_sock_fprog', { len: 'uint16_t', filter: 'uint64_t' });

/** struct sockaddr_nl of a netlink socket: its port id and a mask of its first 32 groups. */
export const sockaddrNl = declareStruct('cr_sockaddr_nl', { nl_family: 'uint16_t', nl_pad: 'uint16_t', nl_pid: 'uint32_t', nl_groups: 'uint32_t' });

/** struct iocb of io_submit(2) (x86_64, little-endian: aio_key before aio_rw_flags). */
export const iocbStruct = declareStruct('cr_iocb', {
  aio_data: 'uint64_t',
  aio_key: 'uint32_t',
  aio_rw_flags: 'uint32_t',
  aio_lio_opcode: 'uint16_t',
  aio_reqprio: 'int16_t',
  aio_fildes: 'uint32_t',
  aio_buf: 'uint64_t',
  aio_nbytes: 'uint64_t',
  aio_offset: 'int64_t',
  aio_reserved2: 'uint64_t',
  aio_flags: 'uint32_t',
  aio_resfd: 'uint32_t',
});

/** struct ptrace_peeksiginfo_args of PTRACE_PEEKSIGINFO. */
export const peeksiginfoArgs = declareStruct('cr_ptrace_peeksiginfo_args', { off: 'uint64_t', flags: 'uint32_t', nr: 'int32_t' });

/** struct ptrace_rseq_configuration of PTRACE_GET_RSEQ_CONFIGURATION. */
export const rseqConfiguration = declareStruct('cr_ptrace_rseq_configuration', {
  rseq_abi_pointer: 'uint64_t',
  rseq_abi_size: 'uint32_t',
  signature: 'uint32_t',
  flags: 'uint32_t',
  pad: 'uint32_t',
});

/** struct utsname of uname(2): six NUL-terminated strings of 65 bytes. */
export const utsname = declareStruct('cr_utsname', (koffi) => {
  const field = koffi.array('char', 65, 'String');
  return { sysname: field, nodename: field, release: field, version: field, machine: field, domainname: field };
});

/** struct epoll_event of epoll_ctl(2): packed on x86_64 (12 bytes). */
export const epollEvent = declarePacked('cr_epoll_event', { events: 'uint32_t', data: 'uint64_t' });

/** struct kcmp_epoll_slot of kcmp(KCMP_EPOLL_TFD). */
export const kcmpEpollSlot = declareStruct('cr_kcmp_epoll_slot', { efd: 'uint32_t', tfd: 'uint32_t', toff: 'uint32_t' });

/** struct sockaddr_un: a path, an abstract name (a leading NUL) or nothing, sized by the address length. */
export const sockaddrUn = declareStruct('cr_sockaddr_un', (koffi) => ({ sun_family: 'uint16_t', sun_path: koffi.array('uint8_t', 108) }));
/** The family that starts every struct sockaddr. */
export const sockaddrFamily = declareStruct('cr_sockaddr', { sa_family: 'uint16_t' });
/** Where sun_path starts: a unix address is as long as its family and its name. */
export const sunPathOffset = (): number => ffi().offsetof(sockaddrUn, 'sun_path');
/** struct sockaddr_in; the port and address in network byte order. */
export const sockaddrIn = declareStruct('cr_sockaddr_in', (koffi) => ({ sin_family: 'uint16_t', sin_port: 'uint16_be_t', sin_addr: koffi.array('uint8_t', 4), sin_zero: koffi.array('uint8_t', 8) }));
/** struct sockaddr_in6. */
export const sockaddrIn6 = declareStruct('cr_sockaddr_in6', (koffi) => ({
  sin6_family: 'uint16_t',
  sin6_port: 'uint16_be_t',
  sin6_flowinfo: 'uint32_be_t',
  sin6_addr: koffi.array('uint8_t', 16),
  sin6_scope_id: 'uint32_t',
}));
/**
 * The start of struct tcp_info (TCP_INFO): the connection's state, as the kernel's TCP_* numbers,
 * the options it negotiated (TCPI_OPT_*) and its window scales (the send scale in the low four
 * bits of tcpi_wscale, the receive scale in the high four: the bitfields on x86_64).
 */
export const tcpInfoHead = declareStruct('cr_tcp_info_head', {
  tcpi_state: 'uint8_t',
  tcpi_ca_state: 'uint8_t',
  tcpi_retransmits: 'uint8_t',
  tcpi_probes: 'uint8_t',
  tcpi_backoff: 'uint8_t',
  tcpi_options: 'uint8_t',
  tcpi_wscale: 'uint8_t',
});
/** struct tcp_repair_opt of TCP_REPAIR_OPTIONS: one option the connection negotiated (TCPOPT_*) and its value. */
export const tcpRepairOpt = declareStruct('cr_tcp_repair_opt', { opt_code: 'uint32_t', opt_val: 'uint32_t' });
/** struct tcp_repair_window of TCP_REPAIR_WINDOW: both windows of a connection in repair mode. */
export const tcpRepairWindow = declareStruct('cr_tcp_repair_window', {
  snd_wl1: 'uint32_t',
  snd_wnd: 'uint32_t',
  max_window: 'uint32_t',
  rcv_wnd: 'uint32_t',
  rcv_wup: 'uint32_t',
});
/** struct msghdr of recvmsg(2). */
export const msghdr = declareStruct('cr_msghdr', {
  msg_name: 'uint64_t',
  msg_namelen: 'uint32_t',
  msg_iov: 'uint64_t',
  msg_iovlen: 'uint64_t',
  msg_control: 'uint64_t',
  msg_controllen: 'uint64_t',
  msg_flags: 'int32_t',
});

/** struct nlmsghdr, which starts every netlink message. */
export const nlmsghdr = declareStruct('cr_nlmsghdr', { nlmsg_len: 'uint32_t', nlmsg_type: 'uint16_t', nlmsg_flags: 'uint16_t', nlmsg_seq: 'uint32_t', nlmsg_pid: 'uint32_t' });
/** struct rtattr (nlattr), which starts every attribute of a netlink message. */
export const rtattr = declareStruct('cr_rtattr', { rta_len: 'uint16_t', rta_type: 'uint16_t' });
/** struct unix_diag_req of sock_diag(7). */
export const unixDiagReq = declareStruct('cr_unix_diag_req', (koffi) => ({
  sdiag_family: 'uint8_t',
  sdiag_protocol: 'uint8_t',
  pad: 'uint16_t',
  udiag_states: 'uint32_t',
  udiag_ino: 'uint32_t',
  udiag_show: 'uint32_t',
  udiag_cookie: koffi.array('uint32_t', 2),
}));
/** struct unix_diag_msg of sock_diag(7). */
export const unixDiagMsg = declareStruct('cr_unix_diag_msg', (koffi) => ({
  udiag_family: 'uint8_t',
  udiag_type: 'uint8_t',
  udiag_state: 'uint8_t',
  pad: 'uint8_t',
  udiag_ino: 'uint32_t',
  udiag_cookie: koffi.array('uint32_t', 2),
}));
/** struct unix_diag_rqlen (UNIX_DIAG_RQLEN): queued bytes, or pending connections and the backlog of a listener. */
export const unixDiagRqlen = declareStruct('cr_unix_diag_rqlen', { udiag_rqueue: 'uint32_t', udiag_wqueue: 'uint32_t' });
/** struct unix_diag_vfs (UNIX_DIAG_VFS): the inode and device of a bound socket's file. */
export const unixDiagVfs = declareStruct('cr_unix_diag_vfs', { udiag_vfs_ino: 'uint32_t', udiag_vfs_dev: 'uint32_t' });
const inetDiagSockid = declareStruct('cr_inet_diag_sockid', (koffi) => ({
  idiag_sport: 'uint16_be_t',
  idiag_dport: 'uint16_be_t',
  idiag_src: koffi.array('uint32_t', 4),
  idiag_dst: koffi.array('uint32_t', 4),
  idiag_if: 'uint32_t',
  idiag_cookie: koffi.array('uint32_t', 2),
}));
/** struct inet_diag_req_v2 of sock_diag(7). */
export const inetDiagReqV2 = declareStruct('cr_inet_diag_req_v2', {
  sdiag_family: 'uint8_t',
  sdiag_protocol: 'uint8_t',
  idiag_ext: 'uint8_t',
  pad: 'uint8_t',
  idiag_states: 'uint32_t',
  id: inetDiagSockid,
});
/** struct inet_diag_msg of sock_diag(7). */
export const inetDiagMsg = declareStruct('cr_inet_diag_msg', {
  idiag_family: 'uint8_t',
  idiag_state: 'uint8_t',
  idiag_timer: 'uint8_t',
  idiag_retrans: 'uint8_t',
  id: inetDiagSockid,
  idiag_expires: 'uint32_t',
  idiag_rqueue: 'uint32_t',
  idiag_wqueue: 'uint32_t',
  idiag_uid: 'uint32_t',
  idiag_inode: 'uint32_t',
});

/** The fixed part of struct file_handle of open_by_handle_at(2); f_handle's bytes follow it. */
export const fileHandleHead = declareStruct('cr_file_handle', { handle_bytes: 'uint32_t', handle_type: 'int32_t' });

/** struct iovec of readv(2), process_vm_readv(2), PTRACE_GETREGSET. */
export const iovec = declareStruct('cr_iovec', { iov_base: 'uint64_t', iov_len: 'uint64_t' });
/** `count` struct iovec one after another, as readv(2) takes them. */
export const iovecs = (count: number): TypeObject => ffi().array(iovec, count);

/** struct __user_cap_header_struct of capset(2). */
export const capUserHeader = declareStruct('cr_cap_user_header', { version: 'uint32_t', pid: 'int32_t' });
/** Two struct __user_cap_data_struct of capset(2) version 3: the low, then the high 32 bits of each set. */
const capUserDataHalf = declareStruct('cr_cap_user_data', { effective: 'uint32_t', permitted: 'uint32_t', inheritable: 'uint32_t' });
export const capUserData = 'cr_cap_user_data_pair';
declareTypes((koffi) => koffi.alias(capUserData, koffi.array(capUserDataHalf, 2)));

/** struct ipc64_perm (x86_64), which starts every *id64_ds. */
const ipc64Perm = declareStruct('cr_ipc64_perm', (koffi) => ({
  key: 'int32_t',
  uid: 'uint32_t',
  gid: 'uint32_t',
  cuid: 'uint32_t',
  cgid: 'uint32_t',
  mode: 'uint16_t',
  pad1: koffi.array('uint8_t', 2),
  seq: 'uint16_t',
  pad2: 'uint16_t',
  unused1: 'uint64_t',
  unused2: 'uint64_t',
}));
/** struct msqid64_ds (x86_64) of msgctl(2). */
export const msqid64Ds = declareStruct('cr_msqid64_ds', {
  msg_perm: ipc64Perm,
  msg_stime: 'int64_t',
  msg_rtime: 'int64_t',
  msg_ctime: 'int64_t',
  msg_cbytes: 'uint64_t',
  msg_qnum: 'uint64_t',
  msg_qbytes: 'uint64_t',
  msg_lspid: 'int32_t',
  msg_lrpid: 'int32_t',
  unused4: 'uint64_t',
  unused5: 'uint64_t',
});

/** The leading ipc64_perm of any *id64_ds, for reading and writing owners and mode in place. */
export const ipcPermHead = ipc64Perm;
/** A buffer that holds any *id64_ds (shmid64_ds, the largest, has 112 bytes). */
export const IPC_STAT_SIZE = 128;

// --- terminals (ttys.ts) ---

/** struct termios2 of TCGETS2/TCSETS2: the termios with its input and output speeds as numbers. */
export const termios2 = declareStruct('cr_termios2', (koffi) => ({
  c_iflag: 'uint32_t',
  c_oflag: 'uint32_t',
  c_cflag: 'uint32_t',
  c_lflag: 'uint32_t',
  c_line: 'uint8_t',
  c_cc: koffi.array('uint8_t', 19, 'Array'),
  c_ispeed: 'uint32_t',
  c_ospeed: 'uint32_t',
}));

/** struct winsize of TIOCGWINSZ/TIOCSWINSZ. */
export const winsize = declareStruct('cr_winsize', { ws_row: 'uint16_t', ws_col: 'uint16_t', ws_xpixel: 'uint16_t', ws_ypixel: 'uint16_t' });

/** struct pollfd of poll(2). */
export const pollfd = declareStruct('cr_pollfd', { fd: 'int', events: 'int16_t', revents: 'int16_t' });

// --- end of terminals ---

/** sizeof(type). */
export const structSize = (type: CType): number => ffi().sizeof(type);

/** The bytes of `value` laid out as `type`. */
export function encodeStruct(type: CType, value: object): Buffer {
  const koffi = ffi();
  const bytes = Buffer.alloc(koffi.sizeof(type));
  koffi.encode(bytes, 0, type, value);
  return bytes;
}

/** The fields of `type` read from `bytes`; koffi gives 64-bit fields as numbers where they fit, so take them with `u64`. */
export function decodeStruct<T>(bytes: Uint8Array, type: CType): T {
  return ffi().decode(bytes, type) as T;
}

/** Changes some fields of the `type` at the start of `bytes`, leaving the rest as they are. */
export function patchStruct(bytes: Uint8Array, type: CType, change: object): void {
  const koffi = ffi();
  koffi.encode(bytes, 0, type, { ...(koffi.decode(bytes, type) as object), ...change });
}

/** A 64-bit field as koffi decodes it (a number, or a bigint beyond 2^53), as a bigint. */
export const u64 = (v: number | bigint): bigint => BigInt(v);

// ---- unix sockets: the control messages of sendmsg(2) and recvmsg(2) (SCM_RIGHTS, SCM_CREDENTIALS) ----

/** struct cmsghdr, which starts each control message; its data follows at CMSG_ALIGN(sizeof(struct cmsghdr)). */
export const cmsghdr = declareStruct('cr_cmsghdr', { cmsg_len: 'uint64_t', cmsg_level: 'int32_t', cmsg_type: 'int32_t' });
/** struct ucred, the data of an SCM_CREDENTIALS message. */
export const ucred = declareStruct('cr_ucred', { pid: 'int32_t', uid: 'uint32_t', gid: 'uint32_t' });
/** The data of an SCM_RIGHTS message: `count` descriptors. */
export const scmRights = (count: number): TypeObject => ffi().array('int32_t', count, 'Array');
/** CMSG_ALIGN: control messages start on 8-byte boundaries. */
export const cmsgAlign = (length: number): number => (length + 7) & ~7;

// ---- memory: userfaultfd write-protection and PAGEMAP_SCAN ----

/** struct uffdio_api of UFFDIO_API. */
export const uffdioApi = declareStruct('cr_uffdio_api', { api: 'uint64_t', features: 'uint64_t', ioctls: 'uint64_t' });
const uffdioRange = declareStruct('cr_uffdio_range', { start: 'uint64_t', len: 'uint64_t' });
/** struct uffdio_register of UFFDIO_REGISTER. */
export const uffdioRegister = declareStruct('cr_uffdio_register', { range: uffdioRange, mode: 'uint64_t', ioctls: 'uint64_t' });
/** struct uffdio_writeprotect of UFFDIO_WRITEPROTECT. */
export const uffdioWriteprotect = declareStruct('cr_uffdio_writeprotect', { range: uffdioRange, mode: 'uint64_t' });

/** struct pm_scan_arg of the PAGEMAP_SCAN ioctl (Linux 6.7+; newer than the installed uapi headers). */
export const pmScanArg = declareStruct('cr_pm_scan_arg', {
  size: 'uint64_t',
  flags: 'uint64_t',
  start: 'uint64_t',
  end: 'uint64_t',
  walk_end: 'uint64_t',
  vec: 'uint64_t',
  vec_len: 'uint64_t',
  max_pages: 'uint64_t',
  category_inverted: 'uint64_t',
  category_mask: 'uint64_t',
  category_anyof_mask: 'uint64_t',
  return_mask: 'uint64_t',
});
/** struct page_region, what PAGEMAP_SCAN fills its vector with. */
export const pageRegion = declareStruct('cr_page_region', { start: 'uint64_t', end: 'uint64_t', categories: 'uint64_t' });
