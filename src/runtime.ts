/**
 * The live configuration: the gateway config and the compiled rule set, swapped atomically on reload.
 * A request takes one {@link Snapshot} at its start and uses it to the end. A reload loads and compiles
 * everything off to the side; if anything is invalid, the last good snapshot keeps serving and the error
 * is kept for `/admin/rules`. Reloads come from file changes (chokidar, debounced) and SIGHUP.
 */
import { watch, type FSWatcher } from 'chokidar';
import { loadConfig, type ConfigOverrides, type GatewayConfig } from './config.js';
import type { Logger } from './log.js';
import { loadRuleDir, type RuleSet } from './rules/load.js';
import { formatIssue, LoadError, type LoadIssue } from './validation.js';

/** One consistent pair of config and rules. */
export interface Snapshot {
  config: GatewayConfig;
  rules: RuleSet;
}

/** Loads the config file and its rules directory. @throws LoadError */
export function loadSnapshot(configFile: string, overrides: ConfigOverrides = {}): Snapshot {
  const config = loadConfig(configFile, overrides);
  const rules = loadRuleDir(config.rules_dir, Object.keys(config.providers), { expressionMs: config.limits.rule_expression_ms });
  return { config, rules };
}

/** Debounce for file-change bursts (editors write, rename and touch in quick succession), ms. */
export const RELOAD_DEBOUNCE_MS = 150;

export class Runtime {
  private snapshot: Snapshot;
  private watcher: FSWatcher | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The last failed reload, cleared by a successful one. */
  lastError: { at: string; issues: LoadIssue[] } | null = null;
  /** Called after every successful swap (tests and the server hook in here). */
  onReload: ((s: Snapshot) => void) | null = null;

  constructor(
    private readonly configFile: string,
    private readonly overrides: ConfigOverrides,
    private readonly log: Logger,
    initial?: Snapshot,
  ) {
    this.snapshot = initial ?? loadSnapshot(configFile, overrides);
    for (const w of this.snapshot.rules.warnings) log.warn({ rule_file: w.file }, formatIssue(w));
  }

  /** The snapshot to use for a request starting now. */
  get current(): Snapshot {
    return this.snapshot;
  }

  /** Loads everything again; swaps only when all of it is valid. Returns true when swapped. */
  reload(reason: string): boolean {
    let next: Snapshot;
    try {
      next = loadSnapshot(this.configFile, this.overrides);
    } catch (err) {
      const issues = err instanceof LoadError ? err.issues : [{ file: this.configFile, line: 1, col: 1, severity: 'error' as const, message: String(err) }];
      this.lastError = { at: new Date().toISOString(), issues };
      this.log.error({ reason, errors: issues.map(formatIssue) }, `reload rejected, still serving rules ${this.snapshot.rules.version}: ${issues.map(formatIssue).join('; ')}`);
      return false;
    }
    const prev = this.snapshot;
    if (next.config.listen.host !== prev.config.listen.host || next.config.listen.port !== prev.config.listen.port) {
      this.log.warn('listen address changed in the config; it takes effect only after a restart');
    }
    if (prev.rules.rules.length > 0 && next.rules.rules.length === 0) {
      this.log.warn(
        { reason, files: prev.rules.files, rules_removed: prev.rules.rules.length },
        `reload removes every rule: ${prev.rules.rules.length} rule(s) of ${prev.rules.files.join(', ')} are gone and requests now go to the default provider unchecked`,
      );
    }
    this.snapshot = next;
    this.lastError = null;
    for (const w of next.rules.warnings) this.log.warn({ rule_file: w.file }, formatIssue(w));
    this.log.info({ reason, rules_version: next.rules.version, rules: next.rules.rules.length }, 'rules reloaded');
    this.onReload?.(next);
    return true;
  }

  /**
   * Watches the rules directory and the config file; changes reload after {@link RELOAD_DEBOUNCE_MS}. Any event in
   * the directory counts, so a Kubernetes ConfigMap update (an atomic swap of the `..data` symlink) reloads too.
   * @returns resolves once the watcher has scanned what it watches (or after 2 s).
   */
  watch(): Promise<void> {
    if (this.watcher) return Promise.resolve();
    const paths = [this.snapshot.config.rules_dir, this.snapshot.config.file];
    const watcher = (this.watcher = watch(paths, { ignoreInitial: true, depth: 0 }));
    // Changes made before the watcher has scanned the directory would go unseen: start-up waits for it (at most 2 s).
    const ready = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 2000);
      watcher.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.watcher.on('all', (event, file) => {
      if (this.timer) clearTimeout(this.timer);
      this.timer = setTimeout(() => {
        this.timer = null;
        this.reload(`${event} ${file}`);
      }, RELOAD_DEBOUNCE_MS);
    });
    this.watcher.on('error', (err) => this.log.error({ err }, 'file watcher error'));
    return ready;
  }

  async close(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    await this.watcher?.close();
    this.watcher = null;
  }
}
