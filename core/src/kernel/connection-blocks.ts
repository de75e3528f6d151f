import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { TargetError, UnsupportedError } from '../errors.js';

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

/**
 * Blocks on TCP connections with nftables, one table per connection (`inet cr-tcp-…`, named by
 * its addresses and ports), dropping every packet of the connection in both directions. While a
 * connection's socket is closed in repair mode or not there at all (a checkpointed program that
 * was killed, and not restored yet), a packet from the peer would be answered with a reset: the
 * block keeps the peer retransmitting instead, until the connection is back and the block lifted.
 * Blocks live in the kernel, not in cr: they outlast cr, and are found again by name.
 */
export class ConnectionBlocks {
  /** The name of the block on the connection from `local` to `peer`. */
  nameOf(local: ConnectionEnd, peer: ConnectionEnd): string {
    return `cr-tcp-${nameOfEnd(local)}-${nameOfEnd(peer)}`;
  }

  /** Drops the connection's packets until `lift`; a block left by an earlier cr on it is replaced. */
  block(local: ConnectionEnd, peer: ConnectionEnd): string {
    const name = this.nameOf(local, peer);
    const [inbound, outbound] = [matchOf(peer, local), matchOf(local, peer)];
    this.nft(
      [
        `table inet ${name} {}`,
        `delete table inet ${name}`,
        `table inet ${name} {`,
        `  chain inbound { type filter hook input priority -150; policy accept; ${inbound} drop; }`,
        `  chain outbound { type filter hook output priority -150; policy accept; ${outbound} drop; }`,
        `}`,
      ].join('\n'),
      name,
    );
    return name;
  }

  /** `block`, with a watchdog that lifts it if cr dies before saying what becomes of it (see HeldBlock). */
  hold(local: ConnectionEnd, peer: ConnectionEnd): HeldBlock {
    const name = this.block(local, peer);
    // The watchdog reads one line from cr; end of file without "keep" (cr died) lifts the block.
    const watchdog = spawn('sh', ['-c', `read -r word; [ "$word" = keep ] || exec "$0" delete table inet ${name}`, nftCommand()], {
      stdio: ['pipe', 'ignore', 'ignore'],
      detached: true,
    });
    // Without a watchdog (or once it is gone) the block is cr's alone to lift, as it is anyway.
    watchdog.on('error', () => undefined);
    watchdog.stdin!.on('error', () => undefined);
    watchdog.unref();
    const release = () => watchdog.stdin!.end('keep\n');
    return {
      name,
      lift: () => {
        try {
          this.lift(name);
        } finally {
          release();
        }
      },
      keep: release,
    };
  }

  /** Removes block `name`; false when there was none. */
  lift(name: string): boolean {
    if (!/^cr-tcp-[0-9a-f._-]+$/.test(name)) throw new TargetError(`${name} is not the name of a connection block of cr`);
    return this.nft(`delete table inet ${name}`, name, true);
  }

  /** Runs an nft script; false when it failed only because the table was not there and `missingIsFine`. */
  private nft(script: string, name: string, missingIsFine = false): boolean {
    try {
      execFileSync(nftCommand(), ['-f', '-'], { input: script, encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'] });
      return true;
    } catch (err) {
      const failure = err as NodeJS.ErrnoException & { stderr?: string };
      if (failure.code === 'ENOENT') throw new UnsupportedError('blocking a TCP connection needs the nft command (Debian package nftables), which is not installed');
      const message = (failure.stderr ?? failure.message).trim().split('\n')[0]!;
      if (missingIsFine && message.endsWith('No such file or directory')) return false;
      throw new TargetError(`nft, for the connection block ${name}: ${message}`);
    }
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
