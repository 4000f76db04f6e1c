/**
 * The provider adapter: everything that differs between upstream wire protocols lives behind this one
 * interface — the URL path, the headers, the body, and the translation of the answer back into Anthropic's
 * format. Forwarding and dry-run both build requests through it, so dry-run shows exactly what is sent.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { ProviderConfig } from '../../config.js';
import type { Logger } from '../../log.js';
import type { Decision } from '../../rules/decision.js';
import type { UpstreamAnswer } from '../client.js';
import type { UpstreamCredential } from '../headers.js';

/** The API endpoint a request was made to. */
export type Endpoint = 'messages' | 'count_tokens' | 'models';

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
  readonly type: ProviderConfig['type'];
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
