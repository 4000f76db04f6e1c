/**
 * A TCP proxy the test controls, put between the gateway and a dependency (Redis, PostgreSQL, an upstream)
 * to inject faults:
 *   pass       — bytes flow both ways (the default);
 *   refuse     — the listener is closed: new connections are refused (ECONNREFUSED); open ones are reset;
 *   reset      — open and new connections are destroyed at once (ECONNRESET);
 *   blackhole  — connections stay open, every byte is swallowed both ways (a partition / a frozen server);
 *   slow       — bytes are delayed by `delayMs` each way.
 * The port stays the same across modes, so the dependency's client reconnects to it on its own.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export type FaultMode = 'pass' | 'refuse' | 'reset' | 'blackhole' | 'slow';

export interface FaultProxy {
  /** 127.0.0.1 port the gateway should use. */
  port: number;
  mode: FaultMode;
  /** Switches mode; `refuse` and `reset` end every open connection, `pass` reopens the listener. */
  set(mode: FaultMode, opts?: { delayMs?: number }): Promise<void>;
  /** Connections accepted so far. */
  readonly accepted: number;
  close(): Promise<void>;
}

/** Starts a proxy on a free 127.0.0.1 port to `targetPort`. */
export async function startFaultProxy(targetPort: number, targetHost = '127.0.0.1'): Promise<FaultProxy> {
  const pairs = new Set<{ client: Socket; upstream: Socket }>();
  let mode: FaultMode = 'pass';
  let delayMs = 0;
  let accepted = 0;
  let server: Server;

  const onConnection = (client: Socket) => {
    accepted++;
    if (mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = connect(targetPort, targetHost);
    // No Nagle delay: small request/response protocols (Redis, PostgreSQL) would otherwise stall on delayed ACKs.
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    const pair = { client, upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    const relay = (from: Socket, to: Socket) =>
      from.on('data', (chunk: Buffer) => {
        if (mode === 'blackhole') return;
        if (mode === 'slow') setTimeout(() => to.destroyed || to.write(chunk), delayMs);
        else to.write(chunk);
      });
    relay(client, upstream);
    relay(upstream, client);
  };

  const listen = (port: number) =>
    new Promise<Server>((resolve, reject) => {
      const s = createServer(onConnection);
      s.once('error', reject);
      s.listen(port, '127.0.0.1', () => resolve(s));
    });

  server = await listen(0);
  const port = (server.address() as { port: number }).port;
  const closeListener = () => new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve()));

  return {
    port,
    get mode() {
      return mode;
    },
    get accepted() {
      return accepted;
    },
    async set(next, opts = {}) {
      delayMs = opts.delayMs ?? delayMs;
      const prev = mode;
      mode = next;
      if (next === 'refuse' || next === 'reset') {
        for (const p of pairs) {
          p.client.resetAndDestroy();
          p.upstream.destroy();
        }
        pairs.clear();
      }
      if (next === 'refuse' && prev !== 'refuse') await closeListener();
      if (next !== 'refuse' && prev === 'refuse') server = await listen(port);
    },
    async close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      pairs.clear();
      await closeListener();
    },
  };
}

/** A fresh PostgreSQL database (helpers.freshDatabase) behind a fault proxy: `url` goes through the proxy, `direct` does not. */
export async function proxiedDatabase(prefix: string): Promise<{ url: string; direct: string; proxy: FaultProxy; drop(): Promise<void> }> {
  const { freshDatabase } = await import('./helpers.js');
  const db = await freshDatabase(prefix);
  const target = new URL(db.url);
  const proxy = await startFaultProxy(Number(target.port || 5432), target.hostname);
  const url = new URL(db.url);
  url.hostname = '127.0.0.1';
  url.port = String(proxy.port);
  return {
    url: url.href,
    direct: db.url,
    proxy,
    async drop() {
      await proxy.close();
      await db.drop();
    },
  };
}
