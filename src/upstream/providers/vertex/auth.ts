/**
 * Google OAuth access tokens for `type: vertex` providers, from Google's own auth library
 * (`google-auth-library` `GoogleAuth`, scope `https://www.googleapis.com/auth/cloud-platform`): a service-account
 * or other credentials JSON named by `credentials_file:`, else Application Default Credentials —
 * `GOOGLE_APPLICATION_CREDENTIALS`, gcloud's user credentials, workload identity federation, or the metadata
 * server of GCE / GKE (workload identity) / Cloud Run. The library caches each token and fetches a new one
 * before it expires (https://cloud.google.com/docs/authentication/application-default-credentials).
 */
import type { GoogleAuth } from 'google-auth-library';
import { UpstreamCredentialsError } from '../../../errors.js';
import { lazyModule } from '../../../lazy.js';

/** Google's auth library, loaded when the first Vertex provider's token source is made. */
const googleAuth = lazyModule<typeof import('google-auth-library')>('google-auth-library', 'a type: vertex provider');

/** Where a provider's Google credentials come from and when the current access token expires. */
export interface GoogleCredentialStatus {
  /** `google application default credentials` or `google credentials file <path>`. */
  source: string;
  /** Expiry of the access token last used (ISO 8601), null before the first request. */
  expires_at: string | null;
}

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';

/** One Google token source per provider. */
class GoogleTokens {
  private readonly auth: GoogleAuth;
  readonly status: GoogleCredentialStatus;

  constructor(
    readonly provider: string,
    credentialsFile: string | null,
  ) {
    this.auth = new (googleAuth().GoogleAuth)({ scopes: CLOUD_PLATFORM, ...(credentialsFile ? { keyFilename: credentialsFile } : {}) });
    this.status = { source: credentialsFile ? `google credentials file ${credentialsFile}` : 'google application default credentials', expires_at: null };
  }

  /**
   * A current access token (a cached one until shortly before it expires).
   * @throws UpstreamCredentialsError naming the provider and the credential source when none can be had.
   */
  async token(): Promise<string> {
    try {
      const client = await this.auth.getClient();
      const { token } = await client.getAccessToken();
      if (!token) throw new Error('the credentials gave no access token');
      const expiry = (client.credentials as { expiry_date?: number | null }).expiry_date;
      this.status.expires_at = expiry ? new Date(expiry).toISOString() : null;
      return token;
    } catch (err) {
      throw new UpstreamCredentialsError(
        this.provider,
        this.status.source,
        `${(err as Error).message.split('\n')[0]}; set credentials_file: or GOOGLE_APPLICATION_CREDENTIALS, or run the gateway with a workload identity`,
        err,
      );
    }
  }
}

const sources = new Map<string, GoogleTokens>();

/** The token source of a provider, kept while its name and credentials file stay the same across reloads. */
export function googleTokensFor(provider: string, credentialsFile: string | null): GoogleTokens {
  const id = `${provider}\0${credentialsFile ?? ''}`;
  let s = sources.get(id);
  if (!s) {
    s = new GoogleTokens(provider, credentialsFile);
    for (const [other, old] of sources) if (old.provider === provider) sources.delete(other);
    sources.set(id, s);
  }
  return s;
}

/** Credential status by provider name, for `/admin/providers` (source and expiry, never a token). */
export function googleCredentialStatus(): Record<string, GoogleCredentialStatus> {
  return Object.fromEntries([...sources.values()].map((s) => [s.provider, { ...s.status }]));
}
