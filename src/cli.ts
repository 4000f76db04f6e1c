#!/usr/bin/env -S node --max-semi-space-size=4
/**
 * `switchyard` — one entry, subcommands: `serve`, `validate-rules`, `dry-run`, `test`, `replay`, `usage`, `migrate`, `keys`.
 * `validate-rules` and `dry-run` take the same `--config` / `--rules` options as `serve` and never touch
 * the network.
 */
import { DEFAULT_CONFIG_FILE, packageInfo } from './init.js';
import { Command, InvalidArgumentError, Option } from 'commander';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import type { ConfigOverrides, GatewayConfig } from './config.js';
import type { LoadIssue } from './validation.js';
import { GROUP_BY_HELP, parseWhen } from './usage/report.js';
import { CACHE_GROUPS } from './usage/cache.js';

// Everything a command needs is imported when it runs (`await import`), so that `--version` and `--help` load none of
// the gateway (issue 33: they answer in tens of ms, not seconds). Only leaf modules are imported above.

interface CommonOptions {
  config?: string;
  rules?: string;
}

function configPath(opts: CommonOptions): string {
  return opts.config ?? process.env.SWITCHYARD_CONFIG ?? DEFAULT_CONFIG_FILE;
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('a port is an integer from 0 to 65535');
  return n;
}

function parsePercent(v: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new InvalidArgumentError('a percentage from 0 to 100');
  return n;
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

async function printIssues(issues: LoadIssue[]): Promise<void> {
  const { formatIssue } = await import('./validation.js');
  for (const i of issues) (i.severity === 'error' ? console.error : console.warn)(formatIssue(i));
}

/** Ends a subcommand that failed: load errors as file:line:col lines, anything else as one line naming the command. */
async function exitWith(command: string, err: unknown): Promise<never> {
  const { LoadError } = await import('./validation.js');
  if (err instanceof LoadError) await printIssues(err.issues);
  else console.error(`switchyard ${command}: ${(err as Error).message}`);
  process.exit(1);
}

const program = new Command();
program
  .name('switchyard')
  .description('A gateway for Claude Code and other Anthropic-API clients, driven by YAML rules.')
  .version(packageInfo().version, '-V, --version', 'print the version')
  .showHelpAfterError();

program
  .command('init')
  .description('start a team repository: the bundled config, rules with their tests, the price table, schemas and a git pre-commit hook')
  .argument('[dir]', 'where to write them (default: the current directory)', '.')
  .action(async (dir: string) => {
    try {
      const { gitSetup, scaffold } = await import('./init.js');
      const written = scaffold(dir);
      console.log(`wrote ${written.length} files into ${path.resolve(dir)}:\n  ${written.join('\n  ')}`);
      for (const line of gitSetup(path.resolve(dir))) console.log(line);
      console.log('next: `switchyard validate-rules`, `switchyard test`, `switchyard serve`; commit the files: the hook validates and tests the rules on every commit');
    } catch (err) {
      await exitWith('init', err);
    }
  });

const withCommon = (cmd: Command) =>
  cmd.option('-c, --config <file>', `gateway config file (default: $SWITCHYARD_CONFIG or ./${DEFAULT_CONFIG_FILE})`).option('-r, --rules <dir>', "rules directory (default: the config's `rules`)");

withCommon(program.command('serve').description('start the gateway'))
  .option('-p, --port <n>', 'listen port (beats $PORT and the config)', parsePort)
  .option('-H, --host <host>', 'listen address (beats $HOST and the config)')
  .option('--dry-run', 'answer every request with its routing decision (JSON) instead of forwarding')
  .action(async (opts: CommonOptions & { port?: number; host?: string; dryRun?: boolean }) => {
    const { LoadError } = await import('./validation.js');
    try {
      const { startGateway } = await import('./server/serve.js');
      await startGateway({
        configFile: configPath(opts),
        overrides: { port: opts.port, host: opts.host, rulesDir: opts.rules },
        dryRun: opts.dryRun,
        handleSignals: true,
      });
    } catch (err) {
      if (err instanceof LoadError) {
        console.error('switchyard: not starting, the configuration is invalid:');
        await printIssues(err.issues);
        process.exit(1);
      }
      console.error(`switchyard: not starting: ${(err as Error).message}`);
      process.exit(1);
    }
  });

/** What a path given to validate-rules is: a rules directory, a rule file, or a gateway config file. */
function classify(p: string, parseYaml: (text: string) => unknown): 'dir' | 'config' | 'rules' {
  if (statSync(p).isDirectory()) return 'dir';
  try {
    const doc = parseYaml(readFileSync(p, 'utf8')) as Record<string, unknown> | null;
    if (doc && typeof doc === 'object' && 'providers' in doc) return 'config';
  } catch {
    // a file that does not parse is reported by the rules loader with its position
  }
  return 'rules';
}

withCommon(program.command('validate-rules').description('check rule files and configs; exit 0 when valid, 1 with file:line:col messages otherwise'))
  .argument('[paths...]', 'rule files, rule directories or config files (default: the config and its rules directory)')
  .action(async (paths: string[], opts: CommonOptions) => {
    const [{ loadConfig }, { loadRuleDir }, { LoadError }, { parse: parseYaml }] = await Promise.all([import('./config.js'), import('./rules/load.js'), import('./validation.js'), import('yaml')]);
    const issues: LoadIssue[] = [];
    let ruleCount = 0;
    const dirsDone = new Set<string>();
    const overrides: ConfigOverrides = { rulesDir: opts.rules, missingEnv: 'warning' };
    let baseConfig: GatewayConfig | null | undefined;
    const providersFromBase = (): string[] | null => {
      if (baseConfig === undefined) {
        try {
          baseConfig = loadConfig(configPath(opts), overrides);
          issues.push(...baseConfig.warnings);
        } catch (err) {
          if (!(err instanceof LoadError)) throw err;
          issues.push(...err.issues);
          baseConfig = null;
        }
      }
      return baseConfig ? Object.keys(baseConfig.providers) : null;
    };
    const checkDir = (dir: string, providers: string[] | null) => {
      const abs = path.resolve(dir);
      if (dirsDone.has(abs) || providers === null) return;
      dirsDone.add(abs);
      try {
        const set = loadRuleDir(abs, providers);
        ruleCount += set.rules.length;
        issues.push(...set.warnings);
      } catch (err) {
        if (!(err instanceof LoadError)) throw err;
        issues.push(...err.issues);
      }
    };
    const checkConfig = (file: string) => {
      try {
        const cfg = loadConfig(file, { missingEnv: 'warning' });
        issues.push(...cfg.warnings);
        checkDir(cfg.rules_dir, Object.keys(cfg.providers));
      } catch (err) {
        if (!(err instanceof LoadError)) throw err;
        issues.push(...err.issues);
      }
    };
    if (paths.length === 0) {
      const providers = providersFromBase();
      if (baseConfig) checkDir(baseConfig.rules_dir, providers);
    }
    for (const p of paths) {
      let kind: ReturnType<typeof classify>;
      try {
        kind = classify(p, parseYaml);
      } catch (err) {
        issues.push({ file: p, line: 1, col: 1, severity: 'error', message: `cannot read: ${(err as Error).message}` });
        continue;
      }
      if (kind === 'config') checkConfig(p);
      else checkDir(kind === 'dir' ? p : path.dirname(p), providersFromBase());
    }
    await printIssues(issues);
    const errors = issues.filter((i) => i.severity === 'error').length;
    if (errors) {
      console.error(`${errors} error${errors === 1 ? '' : 's'}`);
      process.exit(1);
    }
    console.log(`ok: ${ruleCount} rule${ruleCount === 1 ? '' : 's'} in ${dirsDone.size} director${dirsDone.size === 1 ? 'y' : 'ies'}`);
  });

withCommon(program.command('dry-run').description('print the routing decision for a request without sending anything'))
  .requiredOption('--request <file>', 'JSON file holding the request body (a Messages API request)')
  .option('--key <id>', 'client id to evaluate as (as if the request came from that client)')
  .addOption(new Option('--group <name>', "a signed-in user's identity-provider group (repeatable; rules' group:)").argParser(collect).default([]))
  .addOption(new Option('--header <name=value>', 'request header (repeatable)').argParser(collect).default([]))
  .option('--path <path>', 'endpoint path and query', '/v1/messages?beta=true')
  .option('--item <custom_id>', 'with a Message Batch body ({"requests": [...]}): decide only this item (default: each item, at most 100)')
  .option('--json', 'print JSON instead of a table')
  .action(async (opts: CommonOptions & { request: string; key?: string; group: string[]; header: string[]; path: string; item?: string; json?: boolean }) => {
    try {
      const [{ loadConfig }, { loadRuleDir }, { decideOffline }, { dryRunReport, formatReport }, batch, { fileIdsOf }] = await Promise.all([
        import('./config.js'),
        import('./rules/load.js'),
        import('./rules/offline.js'),
        import('./rules/report.js'),
        import('./rules/batch.js'),
        import('./upstream/affinity.js'),
      ]);
      const config = loadConfig(configPath(opts), { rulesDir: opts.rules, missingEnv: 'warning' });
      const rules = loadRuleDir(config.rules_dir, Object.keys(config.providers));
      const raw = readFileSync(opts.request);
      const body = JSON.parse(raw.toString('utf8')) as Record<string, unknown>;
      if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new Error(`${opts.request}: the request must be a JSON object`);
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      for (const h of opts.header) {
        const eq = h.indexOf('=');
        if (eq <= 0) throw new Error(`--header ${h}: expected name=value`);
        headers[h.slice(0, eq).trim().toLowerCase()] = h.slice(eq + 1);
      }
      // A batch body: each item is decided as the gateway decides it, a Messages request of its params on the create path.
      const items = batch.isBatchBody(body)
        ? opts.item
          ? [{ custom_id: opts.item, params: batch.batchItemParams(body, opts.item) }]
          : batch.batchItems(body).slice(0, 100)
        : [{ custom_id: null, params: body }];
      const reports = [];
      for (const item of items) {
        const itemRaw = item.custom_id === null ? raw : undefined;
        const path = item.custom_id === null ? opts.path : batch.BATCH_ITEM_PATH;
        const { decision, prepared } = await decideOffline(config, rules, { body: item.params, raw: itemRaw, headers, path, clientId: opts.key, groups: opts.group });
        const files = fileIdsOf(item.params);
        reports.push({
          ...(item.custom_id === null ? {} : { custom_id: item.custom_id }),
          ...dryRunReport(decision, prepared),
          ...(files.length ? { files: { ids: files, provider: null, key: null } } : {}),
        });
      }
      if (opts.json) console.log(JSON.stringify(reports.length === 1 && !batch.isBatchBody(body) ? reports[0] : reports, null, 2));
      else console.log(reports.map((r) => (r.custom_id ? `item ${r.custom_id}\n${formatReport(r)}` : formatReport(r))).join('\n\n'));
    } catch (err) {
      await exitWith('dry-run', err);
    }
  });

withCommon(program.command('test').description('run rule tests (*.test.yaml beside the rules, or rules/tests/*.yaml); exit 1 when a case fails'))
  .argument('[paths...]', "test files or directories (default: the config's rules directory)")
  .addOption(new Option('--format <format>', 'output format').choices(['text', 'tap', 'junit', 'json']).default('text'))
  .option('--coverage', 'list rules never matched, conditions never seen to fail and fallback chains never checked')
  .addOption(new Option('--min-coverage <percent>', 'exit 1 when coverage is below this (implies --coverage)').argParser(parsePercent))
  .action(async (paths: string[], opts: CommonOptions & { format: 'text' | 'tap' | 'junit' | 'json'; coverage?: boolean; minCoverage?: number }) => {
    try {
      const [{ loadConfig }, { formatCoverage, formatJunit, formatTap, formatText, runTestPaths }] = await Promise.all([import('./config.js'), import('./rules/rule-tests.js')]);
      const configFile = configPath(opts);
      let targets = paths;
      if (targets.length === 0) targets = [opts.rules ?? loadConfig(configFile, { missingEnv: 'warning' }).rules_dir];
      const run = await runTestPaths(targets, configFile, opts.rules);
      if (run.issues.length) {
        await printIssues(run.issues);
        if (run.issues.some((i) => i.severity === 'error')) process.exit(1);
      }
      if (run.results.length === 0) {
        console.error(`switchyard test: no test cases in ${targets.join(', ')} (test files are *.test.yaml beside the rules or *.yaml under rules/tests/)`);
        process.exit(1);
      }
      const wantCoverage = opts.coverage || opts.minCoverage !== undefined;
      if (opts.format === 'json') {
        const coverage = Object.fromEntries([...run.coverage].map(([dir, c]) => [dir, c]));
        console.log(JSON.stringify({ results: run.results, ...(wantCoverage ? { coverage } : {}) }, null, 2));
      } else {
        console.log(opts.format === 'tap' ? formatTap(run.results) : opts.format === 'junit' ? formatJunit(run.results) : formatText(run.results));
        // Coverage goes to stderr in the machine formats so their stdout stays one document.
        if (wantCoverage) (opts.format === 'text' ? console.log : console.error)(formatCoverage(run.coverage));
      }
      const failed = run.results.some((r) => !r.ok);
      const low = opts.minCoverage !== undefined ? [...run.coverage].filter(([, c]) => c.percent < opts.minCoverage!) : [];
      for (const [dir, c] of low) console.error(`switchyard test: coverage of ${dir} is ${c.percent.toFixed(1)}%, below --min-coverage ${opts.minCoverage}`);
      if (failed || low.length) process.exit(1);
    } catch (err) {
      await exitWith('test', err);
    }
  });

program
  .command('replay')
  .description('decide the recorded traffic in the ledger again under a candidate rule set and print what would change, with the cost difference')
  .requiredOption('-r, --rules <dir>', 'the candidate rules directory')
  .option('-c, --config <file>', `gateway config file: providers, prices and the ledger to read (default: $SWITCHYARD_CONFIG or ./${DEFAULT_CONFIG_FILE})`)
  .option('--live-rules <dir>', "the rules to compare against (default: the config's rules directory)")
  .option('--since <when>', 'from (YYYY-MM-DD, an ISO time, or a span back from now: 7d, 24h)', '7d')
  .option('--until <when>', 'until, exclusive (default: now)')
  .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
  .action(async (opts: { rules: string; config?: string; liveRules?: string; since: string; until?: string; format: 'text' | 'json' }) => {
    try {
      const [{ loadConfig }, { loadRuleDir }, { formatReplay, replay }, { ledgerStore }, { loadPrices }] = await Promise.all([
        import('./config.js'),
        import('./rules/load.js'),
        import('./rules/replay.js'),
        import('./usage/open.js'),
        import('./usage/prices.js'),
      ]);
      const config = loadConfig(configPath(opts), { missingEnv: 'warning' });
      const providers = Object.keys(config.providers);
      for (const [what, dir] of [
        ['candidate rules', opts.rules],
        ['live rules', opts.liveRules ?? config.rules_dir],
      ] as const) {
        if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`the ${what} directory ${dir} does not exist`);
      }
      const candidate = loadRuleDir(opts.rules, providers, { expressionMs: config.limits.rule_expression_ms });
      const live = loadRuleDir(opts.liveRules ?? config.rules_dir, providers, { expressionMs: config.limits.rule_expression_ms });
      if (!config.ledger) throw new Error('the ledger is off in this config (ledger: off): there is no recorded traffic to replay');
      if (config.ledger.sqlite && !existsSync(config.ledger.sqlite))
        throw new Error(`no ledger at ${config.ledger.sqlite}: the gateway writes it as it serves requests (ledger: { sqlite: … } in ${config.file})`);
      const since = parseWhen(opts.since);
      const until = opts.until ? parseWhen(opts.until) : new Date(Date.now() + 1000).toISOString();
      const store = (await ledgerStore(config))!;
      let records: Awaited<ReturnType<typeof store.query>>;
      try {
        await store.init();
        records = await store.query(since, until);
      } finally {
        await store.close();
      }
      if (records.length === 0) throw new Error(`the ledger holds no usage records from ${since} to ${until}; nothing to replay (try --since 30d)`);
      const report = await replay(config, live, candidate, loadPrices(config.prices), records, since, until);
      console.log(opts.format === 'json' ? JSON.stringify(report, null, 2) : formatReplay(report));
    } catch (err) {
      await exitWith('replay', err);
    }
  });

withCommon(program.command('usage').description('usage and cost report from the ledger'))
  .option('--since <date>', 'from (YYYY-MM-DD or ISO time, UTC; default: 30 days ago)')
  .option('--until <date>', 'until, exclusive (default: now)')
  .addOption(new Option('--by <dimension>', `group by ${GROUP_BY_HELP} (repeatable; with --cache one of ${CACHE_GROUPS.join(', ')})`).argParser(collect).default([]))
  .addOption(new Option('--where <filter>', 'only records with DIMENSION=VALUE, e.g. user=alice or tag:team=search (repeatable, all must hold)').argParser(collect).default([]))
  .option('--cache', 'cache analytics: hit share, USD saved net of the write premium, and cache breaks with their likely cause')
  .option('--activity', "each Claude Code session's cost beside what it reported producing (commits, pull requests, lines; needs login:)")
  .addOption(new Option('--format <format>', 'output format').choices(['table', 'csv', 'json']).default('table'))
  .action(async (opts: CommonOptions & { since?: string; until?: string; by: string[]; where: string[]; cache?: boolean; activity?: boolean; format: 'table' | 'csv' | 'json' }) => {
    try {
      const [{ loadConfig }, { ledgerStore }] = await Promise.all([import('./config.js'), import('./usage/open.js')]);
      if (opts.activity) {
        const { activityReport, renderActivity } = await import('./usage/activity.js');
        const config = loadConfig(configPath(opts), { rulesDir: opts.rules, missingEnv: 'warning' });
        const store = await ledgerStore(config);
        if (!store) throw new Error('the ledger is off in this config (ledger: off)');
        await store.init();
        try {
          console.log(renderActivity(await activityReport(store, opts.since ? parseWhen(opts.since) : new Date(Date.now() - 30 * 86_400_000).toISOString()), opts.format));
        } finally {
          await store.close();
        }
        return;
      }
      const config = loadConfig(configPath(opts), { rulesDir: opts.rules, missingEnv: 'warning' });
      const store = await ledgerStore(config);
      if (!store) throw new Error('the ledger is off in this config (ledger: off)');
      await store.init();
      try {
        const [{ renderUsageAnswer, runUsageQuery }, { loadPrices }] = await Promise.all([import('./usage/usage-query.js'), import('./usage/prices.js')]);
        const query = { view: opts.cache ? ('cache' as const) : ('usage' as const), by: opts.by, since: opts.since, until: opts.until, where: opts.where };
        console.log(renderUsageAnswer(await runUsageQuery(query, store, loadPrices(config.prices)), opts.format));
      } finally {
        await store.close();
      }
    } catch (err) {
      await exitWith('usage', err);
    }
  });

withCommon(program.command('migrate').description("create or upgrade the ledger's schema (SQLite or PostgreSQL) and exit; run once before rolling out a new version")).action(
  async (opts: CommonOptions) => {
    try {
      const [{ loadConfig }, { ledgerStore }] = await Promise.all([import('./config.js'), import('./usage/open.js')]);
      const config = loadConfig(configPath(opts), { rulesDir: opts.rules, missingEnv: 'warning' });
      const store = await ledgerStore(config);
      if (!store) throw new Error('the ledger is off in this config (ledger: off); nothing to migrate');
      try {
        await store.init();
      } finally {
        await store.close();
      }
      console.log(`switchyard migrate: the ${store.kind} ledger schema is current`);
    } catch (err) {
      await exitWith('migrate', err);
    }
  },
);

/** A duration such as 30m, 8h or 7d, in seconds. */
function parseDuration(v: string): number {
  const m = /^(\d+)([smhd])$/.exec(v);
  if (!m) throw new InvalidArgumentError('a duration such as 30m, 8h or 7d');
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

const login = program.command('login').description("Claude Code's sign-in tools");
login
  .command('new-key')
  .description('print a new private signing key (JWK, EC P-256) for login.signing_keys; keep it in a secret store, not in the config file')
  .action(async () => {
    const { newSigningJwk } = await import('./login/tokens.js');
    console.log(JSON.stringify(await newSigningJwk()));
  });

withCommon(
  login
    .command('token')
    .description(
      "print an access token for a job that cannot sign in (CI: ANTHROPIC_AUTH_TOKEN), signed with the config's login.signing_keys; it is checked against the same policies as a signed-in user and ends with its lifetime (no refresh)",
    ),
)
  .requiredOption('--subject <id>', 'who the token names (the user id in usage records), e.g. ci-nightly')
  .option('--email <email>', "the identity's email (policies and rules see it)")
  .addOption(new Option('--group <name>', 'a group it belongs to, as the identity provider would say (repeatable; policies and rules match on it)').argParser(collect).default([]))
  .addOption(new Option('--ttl <duration>', 'lifetime: 30m, 8h, 7d (at most 30d; default: login.access_token_ttl_s)').argParser(parseDuration))
  .action(async (opts: CommonOptions & { subject: string; email?: string; group: string[]; ttl?: number }) => {
    try {
      const [{ loadConfig }, { TokenService }, { MemoryStore }] = await Promise.all([import('./config.js'), import('./login/tokens.js'), import('./state/store.js')]);
      const config = loadConfig(configPath(opts), { rulesDir: opts.rules, missingEnv: 'warning' });
      if (!config.login) throw new Error(`sign-in is off in ${config.file} (no login:); CI can use a client key instead: switchyard keys new <id>`);
      if (config.login.signing_keys.length === 0)
        throw new Error('login.signing_keys is empty: the gateway signs with a key that dies with its process, so no token made here would verify there; set a key (switchyard login new-key)');
      const { tokens } = await TokenService.create(config.login, new MemoryStore());
      const ttl = opts.ttl ?? config.login.access_token_ttl_s;
      const token = await tokens.issueAccess({ sub: opts.subject, email: opts.email ?? null, name: opts.subject, groups: opts.group }, ttl);
      console.error(`# access token for "${opts.subject}"${opts.group.length ? ` (groups ${opts.group.join(', ')})` : ''}, valid ${ttl} s; use it as ANTHROPIC_AUTH_TOKEN:`);
      console.log(token);
    } catch (err) {
      await exitWith('login token', err);
    }
  });

program
  .command('keys')
  .description('client key tools')
  .command('new')
  .description('print a fresh random client key and the config line holding its SHA-256 (the key itself is not stored)')
  .argument('<id>', 'client id, e.g. alice or ci-bot')
  .action((id: string) => {
    if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(id)) {
      console.error(`switchyard keys new: "${id}" is not a valid client id (letters, digits, _ . -)`);
      process.exit(1);
    }
    const key = 'sk-sy-' + randomBytes(32).toString('base64url');
    const hash = createHash('sha256').update(key).digest('hex');
    console.log(`# Client key for "${id}" — give it to the client (ANTHROPIC_API_KEY); it is shown only once:`);
    console.log(key);
    console.log('# Add under clients: in switchyard.yaml (hot-reloaded, no restart needed):');
    console.log(`  ${id}: { key_sha256: "${hash}", tags: {} }`);
  });

await program.parseAsync(process.argv);
