/**
 * The client's address behind reverse proxies (client-address.ts): X-Forwarded-For is believed only through
 * configured trusted proxies, read from the right, so a client cannot choose its own address.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { clientAddress, TrustedProxies } from '../src/client-address.js';

const req = (remoteAddress: string, xff?: string) => ({ socket: { remoteAddress }, headers: xff === undefined ? {} : { 'x-forwarded-for': xff } }) as never;

test('without trusted proxies the header is never read', () => {
  const none = new TrustedProxies([]);
  assert.equal(clientAddress(req('203.0.113.9', '198.51.100.1'), none), '203.0.113.9');
});

test('through a trusted proxy: the first untrusted hop from the right; a hop the client wrote itself is not believed', () => {
  const trusted = new TrustedProxies(['10.0.0.0/8', '192.0.2.7']);
  assert.equal(clientAddress(req('10.1.2.3', '198.51.100.1'), trusted), '198.51.100.1');
  // The client sent "X-Forwarded-For: 1.2.3.4" itself; the proxy appended the real peer.
  assert.equal(clientAddress(req('10.1.2.3', '1.2.3.4, 198.51.100.1'), trusted), '198.51.100.1');
  // Two trusted proxies in a row (an ingress, then a sidecar), IPv4-mapped peer address.
  assert.equal(clientAddress(req('::ffff:10.9.9.9', '198.51.100.2, 192.0.2.7'), trusted), '198.51.100.2');
  // An untrusted peer's header is ignored whatever it says.
  assert.equal(clientAddress(req('198.51.100.3', '10.0.0.1'), trusted), '198.51.100.3');
  // A trusted peer with no header is itself the address.
  assert.equal(clientAddress(req('10.0.0.1'), trusted), '10.0.0.1');
});

test('IPv6 ranges, and entries that are not addresses are refused with their text', () => {
  const trusted = new TrustedProxies(['fd00::/8']);
  assert.equal(clientAddress(req('fd12::1', '2001:db8::5'), trusted), '2001:db8::5');
  assert.throws(() => new TrustedProxies(['10.0.0.0/x']), /"10\.0\.0\.0\/x" is not an IP address or a CIDR range/);
  assert.throws(() => new TrustedProxies(['10.0.0.0/8x']), /"10\.0\.0\.0\/8x"/);
  assert.throws(() => new TrustedProxies(['10.0.0.0/x8']), /"10\.0\.0\.0\/x8"/);
  // Two-digit prefixes, and an IPv4-mapped peer in upper case, match; a mapped address outside the range does not.
  const sixteen = new TrustedProxies(['172.16.0.0/16']);
  assert.equal(clientAddress(req('172.16.200.3', '198.51.100.7'), sixteen), '198.51.100.7');
  assert.equal(clientAddress(req('::FFFF:172.16.9.9', '198.51.100.8'), sixteen), '198.51.100.8');
  assert.equal(clientAddress(req('::ffff:172.17.0.1', '198.51.100.9'), sixteen), '::ffff:172.17.0.1');
  assert.equal(clientAddress(req('', '198.51.100.9'), sixteen), '', 'a socket without an address is not a proxy');
  assert.throws(() => new TrustedProxies(['proxy.internal']), /"proxy\.internal"/);
});
