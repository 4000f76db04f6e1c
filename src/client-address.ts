/**
 * The address a request came from, for limits keyed per address (the sign-in rate limit, the admin-token
 * back-off): the socket's peer, unless that peer is a configured trusted proxy (`trusted_proxies`), in which
 * case `X-Forwarded-For` is read from the right, skipping trusted hops, and the first untrusted address is
 * the client (RFC 7239 §7.4 explains why only the hops a trusted proxy appended can be believed). With no
 * trusted proxies the header is never read: any client could write it.
 */
import { BlockList, isIP } from 'node:net';
import type { IncomingMessage } from 'node:http';

/** Trusted proxies as a matcher: IP addresses and CIDR ranges (`10.0.0.0/8`, `fd00::/8`). */
export class TrustedProxies {
  private readonly list = new BlockList();
  readonly size: number;

  /** @throws Error naming an entry that is neither an IP address nor a CIDR range. */
  constructor(entries: readonly string[]) {
    for (const e of entries) {
      const [addr, bits] = e.split('/');
      const family = isIP(addr ?? '');
      if (!family || (bits !== undefined && !/^\d+$/.test(bits))) throw new Error(`trusted_proxies: "${e}" is not an IP address or a CIDR range`);
      const type = family === 6 ? 'ipv6' : 'ipv4';
      if (bits === undefined) this.list.addAddress(addr!, type);
      else this.list.addSubnet(addr!, Number(bits), type);
    }
    this.size = entries.length;
  }

  /** Whether `address` (as a socket reports it, IPv4-mapped IPv6 included) is a trusted proxy. */
  has(address: string): boolean {
    // An IPv4 peer of a dual-stack socket is reported as ::ffff:a.b.c.d: BlockList matches it against IPv4 ranges itself.
    const family = isIP(address);
    return family !== 0 && this.list.check(address, family === 6 ? 'ipv6' : 'ipv4');
  }
}

/** The client's address of `req` (see the module comment); '' when the socket has none. */
export function clientAddress(req: Pick<IncomingMessage, 'headers' | 'socket'>, trusted: TrustedProxies): string {
  let address = req.socket.remoteAddress ?? '';
  if (!trusted.has(address)) return address;
  const header = req.headers['x-forwarded-for'];
  const hops = (Array.isArray(header) ? header.join(',') : (header ?? ''))
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  while (hops.length && trusted.has(address)) address = hops.pop()!;
  return address;
}
