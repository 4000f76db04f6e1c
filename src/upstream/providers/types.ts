/**
 * The provider adapter: everything that differs between upstream wire protocols lives behind this one
 * interface — the URL path, the headers, the body, and the translation of the answer back into Anthropic's
 * format. Forwarding and dry-run both build requests through it, so dry-run shows exactly what is sent.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ProviderConfig } from './provider-config.js';
import type { Logger } from '../../log.js';
import type { Decision } from '../../rules/decision.js';
import type { UpstreamAnswer } from '../client.js';
import type { UpstreamCredential } from '../headers.js';

/** The API endpoint a request was made to. */
export type Endpoint = 'messages' | 'count_tokens' | 'models' | 'resource';

/** What an adapter needs to know about the client's request. */
export interface ClientRequest {
  endpoint: Endpoint;
  /** The client's path and query, e.g. `/v1/messages?beta=true`. */
  pathAndQuery: string;
  /** The client's headers (lower-cased names). */
  headers: IncomingHttpHeaders;
  /** The client's body bytes (null for GET), forwarded as they are when nothing changed the body. */
  raw: Buffer | null;
  /** The client's body as received (lazily decoded, see json-scan.ts): what a changed body is serialized against. */
  body: Record<string, unknown>;
  decision: Pick<Decision, 'body' | 'bodyChanged' | 'headers' | 'route'>;
  /** `stream: true` in the body. */
  stream: boolean;
}

/** One upstream request, ready to send (the provider's base_url is prepended). */
export interface OutgoingRequest {
  method: 'GET' | 'POST';
  pathAndQuery: string;
  /** The body bytes; null for GET. */
  body: Buffer | null;
  /** Headers for a given credential (the key can change between attempts; the body does not). */
  headers(credential: UpstreamCredential): Record<string, string | string[]>;
  /**
   * The signature `sign` adds for `credential` (`aws-sigv4`, `google-oauth`), or null when it adds none (a Bedrock API
   * key goes as it is): what dry-run reports, since it shows the headers unsigned.
   */
  signing?(credential: UpstreamCredential): string | null;
  /**
   * Signs the headers just before they are sent (AWS SigV4 for Bedrock, a Google token for Vertex), when
   * {@link signing} names a signature for the credential. A new signature per attempt: a retry is signed again.
   * @throws UpstreamCredentialsError when the provider's cloud credentials cannot be resolved.
   */
  sign?(headers: Record<string, string | string[]>, credential: UpstreamCredential): Promise<Record<string, string | string[]>>;
  /** Body fields that had no equivalent at this provider and were dropped (for a debug log and dry-run). */
  dropped: string[];
}

/** An answer the gateway gives itself, without an upstream call (e.g. a token-count estimate). */
export interface LocalAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface ProviderAdapter {
  /** The `type` in the config. */
  readonly type: string;
  /**
   * Options of a provider entry that only some types take (this type among them): the config refuses them on
   * a type whose adapter does not list them.
   */
  readonly options: readonly string[];
  /** True when the provider signs requests with the gateway's own cloud credentials (it needs no `keys:`). */
  readonly cloudCredentials: boolean;
  /**
   * This type's settings of a provider entry: its base URL (defaulted where the type has one) and its own block.
   * @param configDir the config file's directory (relative paths in the entry are resolved against it).
   * @throws ProviderEntryError naming the field under `providers.<name>` and what to write.
   */
  settle(name: string, entry: ProviderEntry, configDir: string): TypeSettings;
  /** What the type is, for the config schema's description of `type`. */
  readonly description: string;
  /** OpenTelemetry GenAI `gen_ai.provider.name` (the semantic conventions' well-known values: anthropic, openai, aws.bedrock, gcp.vertex_ai). */
  readonly genaiName: string;
  /** Optional packages (package.json peerDependencies) this provider type needs; checked at start (lazy.ts). */
  readonly packages?: readonly string[];
  /** An answer without calling the upstream, or null to call it. */
  local(req: ClientRequest, estimateTokens: number): LocalAnswer | null;
  /**
   * The request for `provider`, sending `model` (the route chain's model for this provider, already renamed).
   * @throws InvalidRequestError when the body cannot be expressed at this provider.
   */
  request(req: ClientRequest, provider: ProviderConfig, model: string): OutgoingRequest;
  /** The upstream's answer in Anthropic's format (identity for Anthropic). */
  answer(answer: UpstreamAnswer, provider: ProviderConfig, req: ClientRequest, requestedModel: string, log: Logger): Promise<UpstreamAnswer>;
  /**
   * For /admin/providers: where a cloud provider's credentials come from and when they expire (never a secret);
   * absent, or null, for providers that use `keys:` or the client's credential.
   */
  credentials?(provider: ProviderConfig): Record<string, string | null> | null;
}

/** A provider's entry in switchyard.yaml as the config schema accepts it (before defaults; `${ENV}` resolved). */
export interface ProviderEntry {
  type: string;
  base_url?: string;
  keys?: string[];
  region?: string;
  aws_profile?: string;
  project?: string;
  credentials_file?: string;
  strip_attribution?: boolean;
  passthrough?: boolean;
  resource?: string;
  workspace_id?: string;
}

/** What a provider type settles from its entry. */
export interface TypeSettings {
  /** The base URL (trailing slashes are cut by the config). */
  base_url: string;
  strip_attribution: boolean;
  bedrock: ProviderConfig['bedrock'];
  vertex: ProviderConfig['vertex'];
}

/** A problem with one provider entry: the path under `providers.<name>` it is at, and what to write. */
export class ProviderEntryError extends Error {
  constructor(
    readonly at: string[],
    message: string,
  ) {
    super(message);
  }
}

/** The base URL an Anthropic-format or OpenAI-compatible entry must give. @throws ProviderEntryError when it does not */
export function requiredBaseUrl(name: string, entry: ProviderEntry): string {
  if (entry.base_url === undefined) throw new ProviderEntryError([], `provider "${name}": base_url is required for type: ${entry.type} (e.g. https://api.anthropic.com)`);
  return entry.base_url;
}
