/** Where a Vertex AI location's endpoint is (config.ts fills `base_url` from it). */

/** The default base URL of a Vertex AI location (as Anthropic's Vertex SDK picks it). */
export function vertexBaseUrl(region: string): string {
  if (region === 'global') return 'https://aiplatform.googleapis.com';
  if (region === 'us' || region === 'eu') return `https://aiplatform.${region}.rep.googleapis.com`;
  return `https://${region}-aiplatform.googleapis.com`;
}
