/**
 * Starting and stopping the gateway: load config and rules (refusing to start on invalid ones), listen,
 * watch for rule changes, reload on SIGHUP, and shut down gracefully on SIGTERM/SIGINT (stop accepting,
 * let open requests and streams finish within `shutdown.grace_ms`, then cut the rest).
 */
import { serve, type ServerType } from '@hono/node-server';
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import type { ConfigOverrides } from '../config.js';
import { createLogger, type Logger } from '../log.js';
import { loadSnapshot, Runtime } from '../runtime.js';
import { UpstreamClient } from '../upstream/client.js';
import { createApp, type AppState } from './app.js';

/** Options of {@link startGateway}. */
export interface GatewayOptions {
  configFile: string;
  overrides?: ConfigOverrides;
  /** Answer every proxied request with its decision instead of forwarding. */
  dryRun?: boolean;
  /** Watch the rules directory and config file for changes (default true). */
  watch?: boolean;
  /** Install SIGTERM/SIGINT/SIGHUP handlers (default false; the CLI turns it on). */
  handleSignals?: boolean;
  logger?: Logger;
}

/** A running gateway. */
export interface Gateway {
  /** Base URL, e.g. `http://127.0.0.1:8790`. */
  url: string;
  port: number;
  runtime: Runtime;
  server: Server;
  /** Graceful stop: refuse new connections, wait up to `grace_ms` for open requests, then cut them. */
  close(): Promise<void>;
}

/**
 * Starts the gateway.
 * @throws LoadError when the config or the initial rule set is invalid (the gateway does not start).
 */
export async function startGateway(opts: GatewayOptions): Promise<Gateway> {
  const snapshot = loadSnapshot(opts.configFile, opts.overrides);
  const log = opts.logger ?? createLogger({ level: process.env.LOG_LEVEL ?? snapshot.config.log.level });
  const runtime = new Runtime(opts.configFile, opts.overrides ?? {}, log, snapshot);
  const upstream = new UpstreamClient();
  const state: AppState = { shuttingDown: false };
  const warned = new Set<string>();
  const app = createApp(
    {
      runtime,
      upstream,
      log,
      dryRun: opts.dryRun ?? false,
      warnOnce(version, rule, message) {
        const key = `${version}\0${rule}`;
        if (warned.has(key)) return;
        warned.add(key);
        log.warn({ rule, rules_version: version }, `rule "${rule}": ${message} (logged once per rule set)`);
      },
    },
    state,
  );
  const { host, port } = snapshot.config.listen;
  const server = await new Promise<ServerType>((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: host, port, overrideGlobalObjects: false }, () => resolve(s));
    s.once('error', reject);
  });
  const http = server as Server;
  // Requests may wait minutes for a long non-streaming answer: no server-side request timeout here.
  http.requestTimeout = 0;
  http.headersTimeout = 60_000;
  http.keepAliveTimeout = 65_000;
  const address = http.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${hostForUrl}:${address.port}`;
  if (opts.watch !== false) runtime.watch();
  log.info(
    { url, config: snapshot.config.file, rules_dir: snapshot.config.rulesDir, rules_version: snapshot.rules.version, rules: snapshot.rules.rules.length, dry_run: opts.dryRun ?? false, admin: 'loopback only' },
    `switchyard listening on ${url}`,
  );

  let closing: Promise<void> | null = null;
  const close = (): Promise<void> => {
    closing ??= (async () => {
      state.shuttingDown = true;
      const grace = runtime.current.config.shutdown.grace_ms;
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      const timer = setTimeout(() => {
        log.warn({ grace_ms: grace }, 'shutdown grace period over; closing the remaining connections');
        http.closeAllConnections();
      }, grace);
      timer.unref();
      await closed;
      clearTimeout(timer);
      await runtime.close();
      await upstream.close();
      log.info('switchyard stopped');
    })();
    return closing;
  };

  if (opts.handleSignals) {
    const onStop = (signal: string) => {
      log.info({ signal }, 'shutting down: no new connections; open requests may finish');
      void close().then(() => process.exit(0));
    };
    process.once('SIGTERM', onStop);
    process.once('SIGINT', onStop);
    process.on('SIGHUP', () => runtime.reload('SIGHUP'));
  }
  return { url, port: address.port, runtime, server: http, close };
}
