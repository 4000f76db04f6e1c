/** Where a region's Amazon Bedrock Runtime endpoint is (config.ts fills `base_url` from it). */

/** The default base URL of a region's Amazon Bedrock Runtime endpoint (https://docs.aws.amazon.com/general/latest/gr/bedrock.html). */
export function bedrockBaseUrl(region: string): string {
  return `https://bedrock-runtime.${region}.amazonaws.com`;
}
