/** Usage report tables (usage/report.ts): every row labelled; without --by, one TOTAL row rather than two unlabelled copies. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { buildReport, renderReport } from '../src/usage/report.js';
import type { UsageRecord } from '../src/usage/record.js';

const rec = (model: string, cost: number) =>
  ({
    time: '2026-12-07T10:00:00Z',
    model,
    provider: 'anthropic',
    client_id: 'alice',
    session_id: null,
    user_id: null,
    project: null,
    agent_id: null,
    tags: {},
    input_tokens: 100,
    output_tokens: 10,
    cache_creation_input_tokens: 0,
    cache_creation_5m_input_tokens: 0,
    cache_creation_1h_input_tokens: 0,
    cache_read_input_tokens: 0,
    cost_usd: cost,
    outcome: 'ok',
    status: 200,
  }) as unknown as UsageRecord;

test('without --by the table has one labelled TOTAL row', () => {
  const lines = renderReport(buildReport([rec('a', 0.5), rec('b', 0.25)], [], 's', 'u'), 'table').split('\n');
  assert.equal(lines.length, 3, lines.join('\n'));
  assert.match(lines[2]!, /^TOTAL\s+2\s+200\s+20\s+0\s+0\s+0\.75\s/);
});

test('with --by each group is a row named by its value, then TOTAL', () => {
  const lines = renderReport(buildReport([rec('a', 0.5), rec('b', 0.25), rec('a', 0.5)], ['model'], 's', 'u'), 'table').split('\n');
  assert.deepEqual(
    lines.slice(2).map((l) => l.split(/\s+/).slice(0, 2)),
    [
      ['a', '2'],
      ['b', '1'],
      ['TOTAL', '3'],
    ],
  );
});
