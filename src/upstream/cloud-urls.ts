/** Default base URLs of the cloud providers' endpoints, by region (config.ts fills `base_url` from them). */

/** The default base URL of a region's Amazon Bedrock Runtime endpoint (https://docs.aws.amazon.com/general/latest/gr/bedrock.html). */
export function bedrockBaseUrl(region: string): string {
  return `https://bedrock-runtime.${region}.amazonaws.com`;
}

/** The default base URL of a Vertex AI location (as Anthropic's Vertex SDK picks it). */
export function vertexBaseUrl(region: string): string {
  if (region === 'global') return 'https://aiplatform.googleapis.com';
  if (region === 'us' || region === 'eu') return `https://aiplatform.${region}.rep.googleapis.com`;
  return `https://${region}-aiplatform.googleapis.com`;
}
