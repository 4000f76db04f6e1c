/**
 * `retries.budget_ms` (issue 35; docs/operations.md): retries stop once the next backoff would end past the budget,
 * whatever `max` allows; the client gets the upstream's last answer and the log line counts every attempt.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { request } from 'undici';
import { startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { startTestGateway, until } from './helpers.js';

let fake: FakeUpstream;
before(async () => {
  fake = await startFakeUpstream();
});
after(() => fake.close());

/** A gateway whose only key the fake always answers 529 (overloaded), with `retries`. */
async function overloaded(retries: string) {
  const providers = `  anthropic:\n    type: anthropic\n    base_url: ${fake.url}\n    keys: [ "k-status-529" ]\n    retries: ${retries}\n    breaker: { failures: 1000 }\n`;
  return startTestGateway({ upstream: fake.url, providers, extraConfig: 'ledger: off\n' });
}

async function attemptsFor(retries: string): Promise<{ attempts: number; status: number; logged: number }> {
  const g = await overloaded(retries);
  try {
    const before = fake.received.length;
    const r = await request(`${g.gw.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'anthropic-version': '2023-06-01' },
      body: JSON.stringify({ model: 'claude-sonnet-4-6', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }),
    });
    await r.body.dump();
    const id = String(r.headers['x-switchyard-request-id']);
    await until(() => g.logs.lines.some((l) => l.request_id === id && l.msg === 'request'));
    const line = g.logs.lines.find((l) => l.request_id === id && l.msg === 'request')!;
    return { attempts: fake.received.length - before, status: r.statusCode, logged: Number(line.retries) + 1 };
  } finally {
    await g.gw.close();
  }
}

test('a 300 ms budget stops 10 allowed retries early, a budget of 0 allows none; without it they all run', async () => {
  // Backoff is full jitter under 400 ms (mean 200 ms), so ten retries would take ~2 s: the budget of 300 ms leaves room for a few.
  const bounded = await attemptsFor('{ max: 10, base_delay_ms: 400, max_delay_ms: 400, budget_ms: 300 }');
  assert.equal(bounded.status, 529, "the upstream's last answer");
  // How many fit depends on the machine's pace (a loaded CI machine may use the budget on the first attempt): the
  // budget's effect is that the ten retries max allows do not all run.
  assert.ok(bounded.attempts < 11, `attempts within the budget: ${bounded.attempts}`);
  assert.equal(bounded.logged, bounded.attempts, 'the log line counts every attempt');
  // A budget of 0: no retry ever starts, exactly one attempt — the bound itself, with no timing in it.
  const none = await attemptsFor('{ max: 10, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 0 }');
  assert.deepEqual([none.attempts, none.logged, none.status], [1, 1, 529]);
  const unbounded = await attemptsFor('{ max: 10, base_delay_ms: 1, max_delay_ms: 1, budget_ms: 60000 }');
  assert.equal(unbounded.attempts, 11, 'max: 10 retries after the first attempt');
});
