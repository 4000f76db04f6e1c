/**
 * One {@link LoginService} per distinct login config, made on first use — and the sign-in's modules (`jose`,
 * `openid-client`) loaded with it, not at start-up: a gateway without `login:` never loads them (they cost its
 * open streams memory: 500 streams held ~25 KB more each with them loaded). A policies-only change keeps everyone
 * signed in.
 */
import type { LoginConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { StateStore } from '../state/store.js';
import type { LoginService } from './service.js';

export class LoginServices {
  private current: { key: string; config: LoginConfig; service: Promise<LoginService> } | null = null;

  constructor(
    private readonly state: StateStore,
    private readonly log: Logger,
  ) {}

  /** The service for `config`, or null when login is off. */
  get(config: LoginConfig | null): Promise<LoginService> | null {
    if (!config) return null;
    // The same config object (every request until a reload): no serialisation on the request path.
    if (this.current?.config === config) return this.current.service;
    const key = JSON.stringify(config);
    if (this.current?.key === key) {
      this.current.config = config;
      return this.current.service;
    }
    const service = import('./service.js').then((m) => m.LoginService.create(config, this.state, this.log));
    service.catch(() => {}); // reported to the request that awaits it
    this.current = { key, config, service };
    return service;
  }
}
