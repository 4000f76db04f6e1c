/**
 * What the scan_secrets tests send: a made-up AWS access key id and GitHub token in the shapes of the real thing, a
 * .env file holding the key, and a Claude-Code-shaped turn whose Bash tool printed that file.
 */
/** Made up for these tests, in the shapes of the real thing (an AWS access key id, a GitHub token). */
export const AWS_KEY = 'AKIAZ4BTQPXWNR7D5VJH';
export const GH_TOKEN = 'ghp_R7xqLk2M9vTn4Wp8Ys1Hd6Fj3Bc5Gz0Ea2Qu';
export const ENV_FILE = `# .env\nAWS_ACCESS_KEY_ID=${AWS_KEY}\nREGION=eu-west-1\n`;

/** A rule file applying scan_secrets in `onFind` mode to every request, then routing to `anthropic`. */
export const SECRET_RULES = (onFind: string) => ({
  '10-secrets.yaml': `version: 1\nrules:\n  - id: secrets\n    actions:\n      - scan_secrets: { on_find: ${onFind} }\n      - route_to: { provider: anthropic }\n`,
});

/** A Claude-Code-shaped turn whose Bash tool printed the .env file. */
export function turnWithSecret(extraTurns = 0): Record<string, unknown> {
  const messages: unknown[] = [
    { role: 'user', content: [{ type: 'text', text: 'show me the env file' }] },
    { role: 'assistant', content: [{ type: 'tool_use', id: 'toolu_01', name: 'Bash', input: { command: 'cat .env' } }] },
    { role: 'user', content: [{ type: 'tool_result', tool_use_id: 'toolu_01', content: ENV_FILE }] },
  ];
  for (let i = 0; i < extraTurns; i++) messages.push({ role: 'assistant', content: [{ type: 'text', text: `turn ${i}` }] }, { role: 'user', content: [{ type: 'text', text: `next ${i}` }] });
  return {
    model: 'claude-sonnet-4-6',
    max_tokens: 100,
    system: [{ type: 'text', text: 'You are Claude Code.' }],
    tools: [{ name: 'Bash', description: 'Runs a command.', input_schema: { type: 'object', properties: { command: { type: 'string' } } } }],
    messages,
  };
}
