/**
 * The structured logger (`log.ts`): one JSON line per event with `service: switchyard`, the level asked (else
 * `LOG_LEVEL`, else info), and every credential-bearing path redacted as a second line of defence.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { PassThrough } from 'node:stream';
import { test } from 'node:test';
import { CREDENTIAL_HEADERS, createLogger, LOG_FLUSH_MS, REDACT_PATHS } from '../src/log.js';

function capture(level?: string): { log: ReturnType<typeof createLogger>; lines: () => Array<Record<string, any>> } {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const log = createLogger({ destination: out, ...(level ? { level } : {}) });
  return {
    log,
    lines: () =>
      Buffer.concat(chunks)
        .toString()
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, any>),
  };
}

test('credential headers, keys and bodies are redacted wherever the code might pass them', () => {
  const { log, lines } = capture();
  const headers = Object.fromEntries(CREDENTIAL_HEADERS.map((h) => [h, `secret-${h}`]));
  log.info({ headers, req: { headers, body: 'the prompt' }, upstreamHeaders: headers, key: 'sk-1', apiKey: 'sk-2', api_key: 'sk-3', body: 'text', model: 'claude-sonnet-4-6' }, 'event');
  const [line] = lines();
  assert.equal(JSON.stringify(line).includes('secret-'), false, JSON.stringify(line));
  for (const h of CREDENTIAL_HEADERS) {
    assert.equal(line!.headers[h], '[redacted]');
    assert.equal(line!.req.headers[h], '[redacted]');
    assert.equal(line!.upstreamHeaders[h], '[redacted]');
  }
  assert.deepEqual([line!.key, line!.apiKey, line!.api_key, line!.body, line!.req.body], Array(5).fill('[redacted]'));
  assert.equal(line!.model, 'claude-sonnet-4-6', 'other fields are kept');
  assert.equal(line!.service, 'switchyard');
  assert.equal(line!.msg, 'event');
  assert.deepEqual(CREDENTIAL_HEADERS, ['x-api-key', 'authorization', 'proxy-authorization', 'cookie', 'set-cookie']);
  assert.equal(REDACT_PATHS.length, CREDENTIAL_HEADERS.length * 3 + 5);
});

test('the level: the one asked, else LOG_LEVEL, else info', () => {
  const quiet = capture('warn');
  quiet.log.info('dropped');
  quiet.log.warn('kept');
  assert.deepEqual(
    quiet.lines().map((l) => l.msg),
    ['kept'],
  );
  const saved = process.env.LOG_LEVEL;
  try {
    process.env.LOG_LEVEL = 'debug';
    assert.equal(capture().log.level, 'debug');
    delete process.env.LOG_LEVEL;
    assert.equal(capture().log.level, 'info');
  } finally {
    if (saved === undefined) delete process.env.LOG_LEVEL;
    else process.env.LOG_LEVEL = saved;
  }
  assert.equal(LOG_FLUSH_MS, 250);
});

test('to stdout: lines buffered for speed are all written when the process exits at once; pretty output when asked', () => {
  const run = (pretty: boolean) =>
    execFileSync(
      process.execPath,
      [
        '--import',
        'tsx',
        '--input-type=module',
        '-e',
        `import { createLogger } from ${JSON.stringify(new URL('../src/log.ts', import.meta.url).href)}; const log = createLogger({ pretty: ${pretty} }); for (let i = 0; i < 3; i++) log.info({ i }, 'line'); ${pretty ? '' : 'process.exit(0);'}`,
      ],
      { encoding: 'utf8', env: { ...process.env, LOG_LEVEL: 'info' } },
    );
  const lines = run(false).split('\n').filter(Boolean);
  assert.deepEqual(
    lines.map((l) => JSON.parse(l).i),
    [0, 1, 2],
    'nothing lost at exit',
  );
  const pretty = run(true);
  assert.match(pretty, /INFO.*line/);
  assert.doesNotMatch(pretty, /^\{/m, 'not JSON lines');
});
