import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, writeSync } from 'node:fs';
import { TargetError, UnsupportedError } from '../errors.js';
import type { Libc } from './libc.js';
import { O_CLOEXEC } from './syscalls.js';

/** One end of a TCP connection: an IPv4 address (dotted) or IPv6 address (eight hex groups), and a port. */
export interface ConnectionEnd {
  family: 'inet' | 'inet6';
  address: string;
  port: number;
}

/**
 * A block cr has set and must decide about: `lift` it (the program carries on), or `keep` it for
 * the restore (the program was killed). Until one of them is called, a watchdog process waits
 * on a pipe from cr, and lifts the block if cr dies (SIGKILL): a connection is never left blocked
 * by a cr that is gone.
 */
export interface HeldBlock {
  readonly name: string;
  lift(): void;
  keep(): void;
}

/** Where `nft` is looked for when it is not on the PATH (root's PATH may lack the sbin directories). */
const NFT_PLACES = ['/usr/sbin/nft', '/sbin/nft'];
/** The exit status of a shell that did not find a command. */
const NOT_FOUND = 127;

/**
 * Blocks on TCP connections with nftables, one table per connection (`inet cr-tcp-…`, named by
 * its addresses and ports), dropping every packet of the connection in both directions. While a
 * connection's socket is closed in repair mode or not there at all (a checkpointed program that
 * was killed, and not restored yet), a packet from the peer would be answered with a reset: the
 * block keeps the peer retransmitting instead, until the connection is back and the block lifted.
 * Blocks live in the kernel, not in cr: they outlast cr, and are found again by name.
 */
export class ConnectionBlocks {
  constructor(private readonly libc: Libc) {}

  /** The name of the block on the connection from `local` to `peer`. */
  nameOf(local: ConnectionEnd, peer: ConnectionEnd): string {
    return `cr-tcp-${nameOfEnd(local)}-${nameOfEnd(peer)}`;
  }

  /** Whether the nft command is there to set blocks with. */
  available(): boolean {
    return NFT_PLACES.some((path) => existsSync(path)) || (process.env.PATH ?? '').split(':').some((dir) => dir !== '' && existsSync(`${dir}/nft`));
  }

  /**
   * Drops the connection's packets until the block is lifted or kept (see HeldBlock); a block
   * left by an earlier cr on it is replaced. One shell sets the block and leaves the watchdog
   * behind, reading the pipe whose other end only cr holds: whenever cr dies, even while the
   * shell runs, the watchdog finds the end of the pipe after the block exists, and lifts it.
   */
  hold(local: ConnectionEnd, peer: ConnectionEnd): HeldBlock {
    const name = this.nameOf(local, peer);
    const [inbound, outbound] = [matchOf(peer, local), matchOf(local, peer)];
    const rules = [
      `table inet ${name} {}`,
      `delete table inet ${name}`,
      `table inet ${name} {`,
      `  chain inbound { type filter hook input priority -150; policy accept; ${inbound} drop; }`,
      `  chain outbound { type filter hook output priority -150; policy accept; ${outbound} drop; }`,
      `}`,
    ].join('\n');
    const watchdog = `( read -r word; [ "$word" = keep ] || exec "$0" delete table inet ${name} ) <&3 >/dev/null 2>&1 3<&- &`;
    const [fromCr, toWatchdog] = this.libc.pipe2(O_CLOEXEC);
    try {
      run(['sh', '-c', `"$0" -f - || exit; ${watchdog}`, nftCommand()], rules, name, fromCr);
    } catch (err) {
      closeSync(toWatchdog);
      throw err;
    } finally {
      closeSync(fromCr);
    }
    let decided = false;
    const keep = () => {
      if (decided) return;
      decided = true;
      try {
        writeSync(toWatchdog, 'keep\n');
      } catch {
        // A watchdog that is gone has nothing left to do.
      }
      closeSync(toWatchdog);
    };
    return {
      name,
      lift: () => {
        try {
          this.lift(name);
        } finally {
          keep();
        }
      },
      keep,
    };
  }

  /** Removes block `name`; false when there was none (or no nft to have set one with). */
  lift(name: string): boolean {
    if (!/^cr-tcp-[0-9a-f._-]+$/.test(name)) throw new TargetError(`${name} is not the name of a connection block of cr`);
    if (!this.available()) return false;
    try {
      run([nftCommand(), 'delete', 'table', 'inet', name], '', name);
      return true;
    } catch (err) {
      if (err instanceof TargetError && err.message.endsWith('No such file or directory')) return false;
      throw err;
    }
  }
}

/** Runs a command with `input` on its stdin (and `fd3` as its fd 3), or throws what it said. */
function run(command: string[], input: string, name: string, fd3?: number): void {
  try {
    execFileSync(command[0]!, command.slice(1), { input, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe', ...(fd3 === undefined ? [] : [fd3])] });
  } catch (err) {
    const failure = err as NodeJS.ErrnoException & { stderr?: string; status?: number };
    if (failure.code === 'ENOENT' || failure.status === NOT_FOUND) throw new UnsupportedError('blocking a TCP connection needs the nft command (Debian package nftables), which is not installed');
    throw new TargetError(`nft, for the connection block ${name}: ${(failure.stderr || failure.message).trim().split('\n')[0]}`);
  }
}

function nftCommand(): string {
  return NFT_PLACES.find((path) => existsSync(path)) ?? 'nft';
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) as the IPv4 address its packets carry. */
function mappedIpv4(end: ConnectionEnd): string | undefined {
  if (end.family === 'inet') return end.address;
  const groups = end.address.split(':').map((g) => Number.parseInt(g, 16));
  if (groups.length !== 8 || groups.slice(0, 5).some((g) => g !== 0) || groups[5] !== 0xffff) return undefined;
  return [groups[6]! >> 8, groups[6]! & 0xff, groups[7]! >> 8, groups[7]! & 0xff].join('.');
}

function nameOfEnd(end: ConnectionEnd): string {
  return `${(mappedIpv4(end) ?? end.address.replaceAll(':', '_')).toLowerCase()}.${end.port}`;
}

/** The nft match of the packets from `from` to `to`. */
function matchOf(from: ConnectionEnd, to: ConnectionEnd): string {
  const [source, destination] = [mappedIpv4(from), mappedIpv4(to)];
  const ip = source !== undefined && destination !== undefined ? `ip saddr ${source} ip daddr ${destination}` : `ip6 saddr ${from.address} ip6 daddr ${to.address}`;
  return `${ip} tcp sport ${from.port} tcp dport ${to.port}`;
}
