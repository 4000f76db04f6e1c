/**
 * The Switchyard dashboard: six views over /admin/ui/api (figures computed on the server), hash-routed
 * (#/overview …), keyboard reachable (the views are links in a nav landmark; tables are plain tables).
 */
import { render } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './style.css';

const VIEWS = ['overview', 'sessions', 'budgets', 'rules', 'providers', 'live'] as const;
type View = (typeof VIEWS)[number];
const TITLES: Record<View, string> = { overview: 'Overview', sessions: 'Sessions', budgets: 'Budgets', rules: 'Rules', providers: 'Providers', live: 'Live' };

const usd = (x: number | null | undefined) => (x === null || x === undefined ? '—' : `$${x.toFixed(x < 1 ? 4 : 2)}`);
const num = (x: number | null | undefined) => (x === null || x === undefined ? '—' : x.toLocaleString('en-US'));
const pctText = (x: number) => `${(x * 100).toFixed(1)}%`;
const day = (d: Date) => d.toISOString().slice(0, 10);

async function api<T>(url: string, init?: RequestInit): Promise<T> {
  const r = await fetch(url, { credentials: 'same-origin', ...init });
  const body = (await r.json()) as T & { error?: { message: string } };
  if (!r.ok) throw new Error(body.error?.message ?? `HTTP ${r.status}`);
  return body;
}

/** A request's state: data, or the error a person can act on. */
function useApi<T>(url: string | null, deps: unknown[] = []): { data: T | null; error: string | null } {
  const [state, setState] = useState<{ data: T | null; error: string | null }>({ data: null, error: null });
  useEffect(() => {
    if (!url) return;
    let live = true;
    api<T>(url).then(
      (data) => live && setState({ data, error: null }),
      (err: Error) => live && setState({ data: null, error: err.message }),
    );
    return () => {
      live = false;
    };
  }, [url, ...deps]);
  return state;
}

interface Filters {
  since: string;
  until: string;
  where: Record<string, string>;
}

const FILTER_KEYS = ['user', 'project', 'session', 'model', 'provider', 'tag'] as const;

function query(f: Filters): string {
  const p = new URLSearchParams({ since: f.since, until: f.until });
  for (const [k, v] of Object.entries(f.where)) {
    if (!v) continue;
    if (k === 'tag') p.append('where', v.startsWith('tag:') ? v : `tag:${v}`);
    else p.append('where', `${k}=${v}`);
  }
  return p.toString();
}

function FilterBar({ value, onChange }: { value: Filters; onChange: (f: Filters) => void }) {
  const [draft, setDraft] = useState(value);
  return (
    <form
      class="filters"
      aria-label="Filters"
      onSubmit={(e) => {
        e.preventDefault();
        onChange(draft);
      }}
    >
      <label>
        From <input type="date" name="since" value={draft.since} onInput={(e) => setDraft({ ...draft, since: e.currentTarget.value })} />
      </label>
      <label>
        Until <input type="date" name="until" value={draft.until} onInput={(e) => setDraft({ ...draft, until: e.currentTarget.value })} />
      </label>
      {FILTER_KEYS.map((k) => (
        <label key={k}>
          {k === 'tag' ? 'Tag (name=value)' : k[0]!.toUpperCase() + k.slice(1)}{' '}
          <input name={k} value={draft.where[k] ?? ''} onInput={(e) => setDraft({ ...draft, where: { ...draft.where, [k]: e.currentTarget.value } })} />
        </label>
      ))}
      <button type="submit">Apply</button>
    </form>
  );
}

/**
 * The overview's chart: x pinned to the filter's range (`range`, epoch seconds), whatever the data covers, so one day
 * of traffic in a 30-day range is a point at its day, not the whole axis; every point drawn, so a single bucket shows.
 */
function Chart({ series, label, range }: { series: [number[], ...number[][]]; label: string[]; range: [number, number] }) {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current || series[0].length === 0) return;
    const plot = new uPlot(
      {
        width: Math.min(900, el.current.clientWidth || 900),
        height: 220,
        scales: { x: { time: true, range: (): uPlot.Range.MinMax => range } },
        series: [{}, ...label.map((l, i) => ({ label: l, stroke: ['#2f6fde', '#c2410c', '#15803d'][i % 3], width: 2, scale: i === 0 ? 'y' : 'y2', points: { show: true, size: 5 } }))],
        axes: [{}, { scale: 'y' }, { scale: 'y2', side: 1, grid: { show: false } }],
        // The x range drawn, for the browser tests (epoch seconds).
        hooks: {
          draw: [
            (u: uPlot) => {
              u.root.parentElement!.dataset.xMin = String(u.scales.x!.min);
              u.root.parentElement!.dataset.xMax = String(u.scales.x!.max);
            },
          ],
        },
      },
      series as uPlot.AlignedData,
      el.current,
    );
    return () => plot.destroy();
  }, [series, range[0], range[1]]);
  return <div ref={el} class="chart" role="img" aria-label={`Chart of ${label.join(' and ')} over time`} />;
}

/**
 * An id (a user, a session, a project) on one line: cut with an ellipsis where it does not fit, the whole value on
 * hover (title) and in what is copied (the text is all there). Claude Code's 64-hex user ids and credential
 * fingerprints keep their first characters, a stable short label.
 */
function Id({ value }: { value: string }) {
  return (
    <span class="id" title={value}>
      {value}
    </span>
  );
}

interface Row {
  group: Record<string, string>;
  requests: number;
  input_tokens: number;
  output_tokens: number;
  cache_write_tokens: number;
  cache_read_tokens: number;
  cost_usd: number;
  cache_hit_ratio: number;
}

function TopTable({ title, by, rows }: { title: string; by: string; rows: Row[] }) {
  return (
    <table>
      <caption>{title}</caption>
      <thead>
        <tr>
          <th scope="col">{by[0]!.toUpperCase() + by.slice(1)}</th>
          <th scope="col">Requests</th>
          <th scope="col">Cost</th>
          <th scope="col">Cache hit</th>
        </tr>
      </thead>
      <tbody>
        {rows.map((r) => (
          <tr key={r.group[by]}>
            <td>
              <Id value={r.group[by]!} />
            </td>
            <td>{num(r.requests)}</td>
            <td>{usd(r.cost_usd)}</td>
            <td>{pctText(r.cache_hit_ratio)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Overview({ filters }: { filters: Filters }) {
  const { data, error } = useApi<{
    since: string;
    until: string;
    totals: Row;
    series: Array<{ t: number; requests: number; cost_usd: number }>;
    error_rate: number;
    refusal_rate: number;
    top_users: Row[];
    top_projects: Row[];
    top_models: Row[];
    by_kind: Row[];
  }>(`/admin/ui/api/overview?${query(filters)}`);
  if (error) return <p role="alert">{error}</p>;
  if (!data) return <p>Loading…</p>;
  const t = data.totals;
  const cards: Array<[string, string, string]> = [
    ['total-cost', 'Spend', usd(t.cost_usd)],
    ['total-requests', 'Requests', num(t.requests)],
    ['total-input', 'Input tokens', num(t.input_tokens)],
    ['total-output', 'Output tokens', num(t.output_tokens)],
    ['total-cache-read', 'Cache read tokens', num(t.cache_read_tokens)],
    ['total-cache-write', 'Cache write tokens', num(t.cache_write_tokens)],
    ['cache-hit', 'Cache hit share', pctText(t.cache_hit_ratio)],
    ['error-rate', 'Error rate', pctText(data.error_rate)],
    ['refusal-rate', 'Refusal rate', pctText(data.refusal_rate)],
    // Interactive and batch spend apart (batch items cost half; usage/batch-items.ts).
    ['interactive-cost', 'Interactive spend', usd(data.by_kind.filter((r) => r.group.kind !== 'batch').reduce((a, r) => a + r.cost_usd, 0))],
    ['batch-cost', 'Batch spend', usd(data.by_kind.find((r) => r.group.kind === 'batch')?.cost_usd ?? 0)],
  ];
  return (
    <>
      <dl class="cards">
        {cards.map(([id, label, value]) => (
          <div key={id}>
            <dt>{label}</dt>
            <dd data-testid={id}>{value}</dd>
          </div>
        ))}
      </dl>
      <Chart
        series={[data.series.map((p) => p.t), data.series.map((p) => p.cost_usd), data.series.map((p) => p.requests)]}
        label={['Spend (USD)', 'Requests']}
        range={[Date.parse(data.since) / 1000, Date.parse(data.until) / 1000]}
      />
      <div class="grid">
        <TopTable title="Top users" by="user" rows={data.top_users} />
        <TopTable title="Top projects" by="project" rows={data.top_projects} />
        <TopTable title="Top models" by="model" rows={data.top_models} />
      </div>
    </>
  );
}

interface SessionRow {
  session: string;
  user: string;
  project: string;
  turns: number;
  cost_usd: number;
  cache_hit_ratio: number;
  cache_breaks: number;
  last: string;
  activity: { commits: number; pull_requests: number; lines_added: number; lines_removed: number; usd_per_commit: number | null; usd_per_pull_request: number | null } | null;
}

function Sessions({ filters }: { filters: Filters }) {
  const { data, error } = useApi<{ sessions: SessionRow[] }>(`/admin/ui/api/sessions?${query(filters)}`);
  const [open, setOpen] = useState<string | null>(null);
  const detail = useApi<{
    requests: Array<{ time: string; request_id: string; model: string; status: number; outcome: string; input_tokens: number; output_tokens: number; cost_usd: number | null }>;
  }>(open ? `/admin/ui/api/sessions/${encodeURIComponent(open)}/requests?${query(filters)}` : null);
  if (error) return <p role="alert">{error}</p>;
  if (!data) return <p>Loading…</p>;
  // What sessions produced (commits, pull requests) shows when Claude Code's telemetry reaches the gateway.
  const produced = data.sessions.some((s) => s.activity);
  return (
    <>
      <table data-testid="sessions">
        <caption>Claude Code sessions, most expensive first</caption>
        <thead>
          <tr>
            <th scope="col">Session</th>
            <th scope="col">User</th>
            <th scope="col">Project</th>
            <th scope="col">Turns</th>
            <th scope="col">Cost</th>
            <th scope="col">Cache hit</th>
            <th scope="col">Cache breaks</th>
            {produced && <th scope="col">Commits</th>}
            {produced && <th scope="col">Pull requests</th>}
            {produced && <th scope="col">Cost per commit</th>}
            <th scope="col">Last</th>
          </tr>
        </thead>
        <tbody>
          {data.sessions.map((s) => (
            <tr key={s.session}>
              <td>
                <button type="button" class="link id" title={s.session} onClick={() => setOpen(s.session)}>
                  {s.session}
                </button>
              </td>
              <td>
                <Id value={s.user} />
              </td>
              <td>
                <Id value={s.project} />
              </td>
              <td>{num(s.turns)}</td>
              <td>{usd(s.cost_usd)}</td>
              <td>{pctText(s.cache_hit_ratio)}</td>
              <td data-testid={`cache-breaks-${s.session}`}>{num(s.cache_breaks)}</td>
              {produced && <td data-testid={`commits-${s.session}`}>{s.activity ? num(s.activity.commits) : '—'}</td>}
              {produced && <td data-testid={`prs-${s.session}`}>{s.activity ? num(s.activity.pull_requests) : '—'}</td>}
              {produced && <td data-testid={`cost-per-commit-${s.session}`}>{usd(s.activity?.usd_per_commit)}</td>}
              <td class="nowrap">{s.last.slice(0, 19).replace('T', ' ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {open && detail.data && (
        <table data-testid="session-requests">
          <caption>Requests of session {open}</caption>
          <thead>
            <tr>
              <th scope="col">Time</th>
              <th scope="col">Request</th>
              <th scope="col">Model</th>
              <th scope="col">Status</th>
              <th scope="col">Tokens in / out</th>
              <th scope="col">Cost</th>
            </tr>
          </thead>
          <tbody>
            {detail.data.requests.map((r) => (
              <tr key={r.request_id}>
                <td>{r.time.slice(0, 19).replace('T', ' ')}</td>
                <td>{r.request_id}</td>
                <td>{r.model}</td>
                <td>
                  {r.status} {r.outcome}
                </td>
                <td>
                  {num(r.input_tokens)} / {num(r.output_tokens)}
                </td>
                <td>{usd(r.cost_usd)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}

interface Burn {
  value: string;
  spent_usd: number;
  limit_usd: number;
  burn: Array<{ day: string; spent_usd: number }>;
  projected_exhaustion: string | null;
  period_end: string;
  notified: Array<{ threshold: number; time: string | null; delivered: boolean }>;
}

function Budgets() {
  const { data, error } = useApi<{ budgets: Array<{ rule: string; scope: string; per: string; limit_usd: number; notify: number[]; block: boolean; values: Burn[] }> }>('/admin/ui/api/budgets');
  if (error) return <p role="alert">{error}</p>;
  if (!data) return <p>Loading…</p>;
  if (!data.budgets.length) return <p>No rule sets a budget.</p>;
  return (
    <>
      {data.budgets.map((b) => (
        <section key={b.rule} aria-labelledby={`budget-${b.rule}`}>
          <h2 id={`budget-${b.rule}`}>
            {b.rule}: {usd(b.limit_usd)} per {b.per} per {b.scope}
            {b.block ? '' : ' (notify only)'}
          </h2>
          <table>
            <thead>
              <tr>
                <th scope="col">{b.scope}</th>
                <th scope="col">Spent</th>
                <th scope="col">Burn-down</th>
                <th scope="col">Runs out</th>
                {b.notify.length > 0 && <th scope="col">Notified</th>}
              </tr>
            </thead>
            <tbody>
              {b.values.map((v) => (
                <tr key={v.value}>
                  <td>{v.value}</td>
                  <td data-testid={`budget-spent-${b.rule}-${v.value}`}>
                    {usd(v.spent_usd)} of {usd(v.limit_usd)}
                  </td>
                  <td>
                    <progress max={v.limit_usd} value={Math.min(v.spent_usd, v.limit_usd)} aria-label={`${v.value}: ${pctText(v.spent_usd / v.limit_usd)} of the budget spent`} />
                  </td>
                  <td>{v.projected_exhaustion ? v.projected_exhaustion.slice(0, 10) : 'not this period'}</td>
                  {b.notify.length > 0 && (
                    <td data-testid={`budget-notified-${b.rule}-${v.value}`}>
                      {v.notified.length
                        ? v.notified.map((n) => `${Math.round(n.threshold * 100)}%${n.time ? ` ${n.time.slice(5, 16).replace('T', ' ')}` : ''}${n.delivered ? '' : ' (sending)'}`).join(', ')
                        : 'none yet'}
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      ))}
    </>
  );
}

const SAMPLE = JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 1024, messages: [{ role: 'user', content: 'Hello' }] }, null, 2);

function DryRun() {
  const [text, setText] = useState(SAMPLE);
  const [result, setResult] = useState<string | null>(null);
  return (
    <form
      class="dry-run"
      aria-label="Dry run"
      onSubmit={async (e) => {
        e.preventDefault();
        try {
          const report = await api<{ route: { provider: string; model: string }; rules: Array<{ id: string; matched: boolean }>; request: unknown; headers: unknown; denied: unknown }>(
            '/admin/ui/api/dry-run',
            {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ body: JSON.parse(text) }),
            },
          );
          setResult(
            JSON.stringify({ route: report.route, matched: report.rules.filter((r) => r.matched).map((r) => r.id), denied: report.denied, request: report.request, headers: report.headers }, null, 2),
          );
        } catch (err) {
          setResult(`error: ${(err as Error).message}`);
        }
      }}
    >
      <label for="dry-run-body">A Messages request to decide (nothing is sent)</label>
      <textarea id="dry-run-body" rows={8} value={text} onInput={(e) => setText(e.currentTarget.value)} />
      <button type="submit">Decide</button>
      {result && <pre data-testid="dry-run-result">{result}</pre>}
    </form>
  );
}

function Rules() {
  const { data, error } = useApi<{
    version: string;
    last_error: { at: string; errors: string[] } | null;
    warnings: string[];
    rules: Array<{ id: string; file: string; line: number; actions: string[]; hits: number; last_match: string | null; denied: number; throttled: number; budget_refused: number }>;
  }>('/admin/ui/api/rules');
  if (error) return <p role="alert">{error}</p>;
  if (!data) return <p>Loading…</p>;
  return (
    <>
      <p>
        Rules version <code data-testid="rules-version">{data.version}</code>
      </p>
      {data.last_error && (
        <div role="alert" class="error">
          <p>The last reload failed at {data.last_error.at}; the rules above still serve:</p>
          <ul>
            {data.last_error.errors.map((e) => (
              <li key={e}>{e}</li>
            ))}
          </ul>
        </div>
      )}
      <table data-testid="rules">
        <caption>Rules in evaluation order (hits over the last 7 days, from the ledger)</caption>
        <thead>
          <tr>
            <th scope="col">Rule</th>
            <th scope="col">Where</th>
            <th scope="col">Actions</th>
            <th scope="col">Hits</th>
            <th scope="col">Last match</th>
            <th scope="col">Denied</th>
            <th scope="col">Throttled</th>
            <th scope="col">Over budget</th>
          </tr>
        </thead>
        <tbody>
          {data.rules.map((r) => (
            <tr key={r.id}>
              <td>{r.id}</td>
              <td>
                {r.file}:{r.line}
              </td>
              <td>{r.actions.join(', ')}</td>
              <td data-testid={`rule-hits-${r.id}`}>{num(r.hits)}</td>
              <td>{r.last_match ? r.last_match.slice(0, 19).replace('T', ' ') : '—'}</td>
              <td data-testid={`rule-denied-${r.id}`}>{num(r.denied)}</td>
              <td data-testid={`rule-throttled-${r.id}`}>{num(r.throttled)}</td>
              <td data-testid={`rule-budget-${r.id}`}>{num(r.budget_refused)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <SecretFindings />
      <DryRun />
    </>
  );
}

/** scan_secrets' findings per user and session over the last 7 days (counts by gitleaks rule id, never a value). */
function SecretFindings() {
  const { data, error } = useApi<{ sessions: Array<{ user: string; session: string; findings: Record<string, number>; requests: number; last_seen: string }> }>('/admin/ui/api/secrets');
  if (error) return <p role="alert">{error}</p>;
  if (!data) return null;
  return (
    <table data-testid="secret-findings">
      <caption>Secret findings by user and session (scan_secrets, last 7 days)</caption>
      <thead>
        <tr>
          <th scope="col">User</th>
          <th scope="col">Session</th>
          <th scope="col">Findings by rule</th>
          <th scope="col">Requests</th>
          <th scope="col">Last seen</th>
        </tr>
      </thead>
      <tbody>
        {data.sessions.length === 0 ? (
          <tr>
            <td colSpan={5}>No secrets found.</td>
          </tr>
        ) : (
          data.sessions.map((r) => (
            <tr key={`${r.user}\u0000${r.session}`}>
              <td>{r.user}</td>
              <td>{r.session}</td>
              <td>
                {Object.entries(r.findings)
                  .map(([rule, n]) => `${rule} × ${n}`)
                  .join(', ')}
              </td>
              <td>{num(r.requests)}</td>
              <td>{r.last_seen.slice(0, 19).replace('T', ' ')}</td>
            </tr>
          ))
        )}
      </tbody>
    </table>
  );
}

function Providers() {
  const { data, error } = useApi<{
    state_store: string;
    providers: Array<{
      name: string;
      base_url: string;
      circuit: string;
      credentials?: { source: string; expires_at: string | null };
      keys: Array<{ key: string; state: string }>;
      stats: { requests: number; latency_p50_ms: number | null; latency_p95_ms: number | null; ttft_p50_ms: number | null; error_rate: number } | null;
    }>;
  }>('/admin/ui/api/providers');
  if (error) return <p role="alert">{error}</p>;
  if (!data) return <p>Loading…</p>;
  return (
    <table data-testid="providers">
      <caption>Providers (state store: {data.state_store}; latency over the last 7 days)</caption>
      <thead>
        <tr>
          <th scope="col">Provider</th>
          <th scope="col">Circuit</th>
          <th scope="col">Keys / credentials</th>
          <th scope="col">Requests</th>
          <th scope="col">p50 / p95 ms</th>
          <th scope="col">First byte p50 ms</th>
          <th scope="col">Errors</th>
        </tr>
      </thead>
      <tbody>
        {data.providers.map((p) => (
          <tr key={p.name}>
            <td>
              {p.name}
              <br />
              <small>{p.base_url}</small>
            </td>
            <td>{p.circuit}</td>
            <td>
              {p.credentials
                ? `${p.credentials.source}${p.credentials.expires_at ? `, until ${p.credentials.expires_at}` : ''}`
                : p.keys.length
                  ? p.keys.map((k) => `${k.key} ${k.state}`).join(', ')
                  : "the client's own"}
            </td>
            <td>{num(p.stats?.requests ?? 0)}</td>
            <td>
              {num(p.stats?.latency_p50_ms)} / {num(p.stats?.latency_p95_ms)}
            </td>
            <td>{num(p.stats?.ttft_p50_ms)}</td>
            <td>{p.stats ? pctText(p.stats.error_rate) : '—'}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface LiveLine {
  time: string;
  request_id: string;
  model: string | null;
  provider: string | null;
  status: number;
  outcome: string;
  latency_ms: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number | null;
  rules: string[];
}

function Live() {
  const [lines, setLines] = useState<LiveLine[]>([]);
  const [paused, setPaused] = useState(false);
  const pausedRef = useRef(false);
  pausedRef.current = paused;
  useEffect(() => {
    const source = new EventSource('/admin/ui/api/live');
    source.addEventListener('request', (e) => {
      if (pausedRef.current) return;
      const line = JSON.parse((e as MessageEvent<string>).data) as LiveLine;
      setLines((prev) => [line, ...prev].slice(0, 200));
    });
    return () => source.close();
  }, []);
  return (
    <>
      <button type="button" aria-pressed={paused} onClick={() => setPaused(!paused)}>
        {paused ? 'Resume' : 'Pause'}
      </button>
      <table data-testid="live">
        <caption>Requests as they finish (newest first; no bodies, no keys)</caption>
        <thead>
          <tr>
            <th scope="col">Time</th>
            <th scope="col">Request</th>
            <th scope="col">Model → provider</th>
            <th scope="col">Status</th>
            <th scope="col">ms</th>
            <th scope="col">Tokens in / out</th>
            <th scope="col">Cost</th>
            <th scope="col">Rules</th>
          </tr>
        </thead>
        <tbody aria-live="polite">
          {lines.map((l) => (
            <tr key={l.request_id}>
              <td>{l.time.slice(11, 19)}</td>
              <td>{l.request_id}</td>
              <td>
                {l.model} → {l.provider}
              </td>
              <td>
                {l.status} {l.outcome}
              </td>
              <td>{Math.round(l.latency_ms)}</td>
              <td>
                {num(l.input_tokens)} / {num(l.output_tokens)}
              </td>
              <td>{usd(l.cost_usd)}</td>
              <td>{l.rules.join(', ')}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

const viewOf = (hash: string): View => {
  const v = hash.replace(/^#\/?/, '') as View;
  return VIEWS.includes(v) ? v : 'overview';
};

function App() {
  const [view, setView] = useState<View>(viewOf(location.hash));
  const now = new Date();
  const [filters, setFilters] = useState<Filters>({ since: day(new Date(now.getTime() - 6 * 86_400_000)), until: day(new Date(now.getTime() + 86_400_000)), where: {} });
  useEffect(() => {
    const onHash = () => setView(viewOf(location.hash));
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);
  const first = useRef(true);
  useEffect(() => {
    document.title = `${TITLES[view]} — Switchyard`;
    // On a change of view (not the first page load), focus moves to its heading for keyboard and screen-reader users.
    if (!first.current) document.getElementById('view-title')?.focus();
    first.current = false;
  }, [view]);
  return (
    <>
      <header>
        <p class="brand">Switchyard</p>
        <nav aria-label="Views">
          <ul>
            {VIEWS.map((v) => (
              <li key={v}>
                <a href={`#/${v}`} aria-current={v === view ? 'page' : undefined}>
                  {TITLES[v]}
                </a>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main>
        <h1 id="view-title" tabIndex={-1}>
          {TITLES[view]}
        </h1>
        {(view === 'overview' || view === 'sessions') && <FilterBar value={filters} onChange={setFilters} />}
        {view === 'overview' && <Overview filters={filters} />}
        {view === 'sessions' && <Sessions filters={filters} />}
        {view === 'budgets' && <Budgets />}
        {view === 'rules' && <Rules />}
        {view === 'providers' && <Providers />}
        {view === 'live' && <Live />}
      </main>
    </>
  );
}

render(<App />, document.getElementById('app')!);
