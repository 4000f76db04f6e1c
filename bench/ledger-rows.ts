/**
 * Usage records generated inside the database for the ledger benchmarks (budget-seed, ledger-scale): the columns
 * and a SELECT over a row number `i` that makes one Claude-Code-like record per row, newest first, `perSecond`
 * records per second before `now`, spread over `users` users, 10 teams, `users * 100` sessions and 5 projects.
 */
export const RECORD_COLS =
  'time, request_id, client_id, key_fingerprint, session_id, user_id, project, agent_id, requested_model, provider, model, rules_version, rules, facts, tags, status, outcome, error_type, retries, latency_ms, ttft_ms, input_tokens, output_tokens, cache_creation_input_tokens, cache_creation_5m_input_tokens, cache_creation_1h_input_tokens, cache_read_input_tokens, cost_usd';

/**
 * @param now epoch ms of the newest record.
 * @param time SQL turning an epoch-ms expression into the store's time column.
 * @param json SQL turning a JSON text expression into the store's JSON column.
 * @param spanS records repeat their times every this many seconds (the range they cover).
 */
export const recordSelect = (opts: { now: number; spanS: number; users: number; time: (expr: string) => string; json?: (expr: string) => string }) => {
  const json = opts.json ?? ((e: string) => e);
  return `
  SELECT ${opts.time(`${opts.now} - ((i % ${opts.spanS}) * 1000 + (i / ${opts.spanS}) % 1000)`)}, 'sy_seed_' || i, 'client-' || (i % 50), NULL, 's-' || (i % ${opts.users * 100}), 'user-' || (i % ${opts.users}), 'proj-' || (i % 5), NULL,
         'claude-sonnet-4-6', 'anthropic', 'claude-sonnet-4-6', 'v', ${json(`'["team","user-monthly","team-weekly","org-daily"]'`)}, NULL, ${json(`('{"team":"team-' || (i % 10) || '"}')`)},
         200, 'ok', NULL, 0, 900, 300, 20, 400, 1000, 1000, 0, 20000, 0.0135`;
};
