#!/usr/bin/env node
// A Claude Code status line showing what you spent through Switchyard today and this month, your tightest
// budget and your cache hit share, e.g.:  $1.24 today · $38.10 this month · team-daily $61.90 left · cache 87%
//
// Claude Code runs the statusLine command on each update (at most every 300 ms), passing session JSON on
// stdin and showing the first line printed (https://code.claude.com/docs/en/statusline). This script asks
// GET $ANTHROPIC_BASE_URL/v1/me/usage with the same key Claude Code uses (ANTHROPIC_API_KEY, else
// ANTHROPIC_AUTH_TOKEN); the gateway answers from a 5-second cache. It never fails the status line: on any
// error it prints a short reason instead. Needs Node 18+ (global fetch); no dependencies.
const base = (process.env.ANTHROPIC_BASE_URL || 'http://127.0.0.1:8790').replace(/\/+$/, '');
const apiKey = process.env.ANTHROPIC_API_KEY;
const token = process.env.ANTHROPIC_AUTH_TOKEN;
const headers = apiKey ? { 'x-api-key': apiKey } : token ? { authorization: `Bearer ${token}` } : {};

const usd = (n) => `$${n.toFixed(2)}`;

async function main() {
  try {
    const r = await fetch(`${base}/v1/me/usage`, { headers, signal: AbortSignal.timeout(2000) });
    if (!r.ok) return `switchyard: ${r.status}`;
    const u = await r.json();
    const parts = [`${usd(u.today.usd)} today`, `${usd(u.month.usd)} this month`];
    // The budget closest to running out.
    const tightest = [...u.budgets].sort((a, b) => a.remaining_usd / a.limit_usd - b.remaining_usd / b.limit_usd)[0];
    if (tightest) parts.push(`${tightest.rule} ${usd(tightest.remaining_usd)} left`);
    parts.push(`cache ${Math.round(u.month.cache_hit_share * 100)}%`);
    return parts.join(' · ');
  } catch (err) {
    return `switchyard: ${err.name === 'TimeoutError' ? 'no answer' : 'unreachable'}`;
  }
}

process.stdin.resume();
process.stdin.on('data', () => {}); // the session JSON is not needed
console.log(await main());
process.exit(0);
