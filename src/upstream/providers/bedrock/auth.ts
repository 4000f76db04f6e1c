/**
 * AWS request signing for `type: bedrock` providers: Signature Version 4 by AWS's own signer
 * (`@smithy/signature-v4`, SHA-256 from `@smithy/hash-node`) with credentials from AWS's default Node provider
 * chain (`@aws-sdk/credential-providers` `fromNodeProviderChain`: environment variables, the shared config and
 * credentials files (a named `profile`), web identity (EKS IRSA), ECS task role, EC2 instance role). The chain
 * memoizes what it resolved and resolves again shortly before temporary credentials expire, so a long-running
 * gateway keeps signing through role rotations. Signing reference:
 * https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_sigv4-create-signed-request.html
 * (service name `bedrock`, https://docs.aws.amazon.com/bedrock/latest/APIReference/welcome.html).
 */
import type { SignatureV4 } from '@smithy/signature-v4';
import type { AwsCredentialIdentity, AwsCredentialIdentityProvider } from '@smithy/types';
import { UpstreamCredentialsError } from '../../../errors.js';
import { lazyModule } from '../../../lazy.js';

// AWS's SDK modules, loaded when the first Bedrock provider's signer is made.
const credentialProviders = lazyModule<typeof import('@aws-sdk/credential-providers')>('@aws-sdk/credential-providers', 'a type: bedrock provider');
const hashNode = lazyModule<typeof import('@smithy/hash-node')>('@smithy/hash-node', 'a type: bedrock provider');
const signatureV4 = lazyModule<typeof import('@smithy/signature-v4')>('@smithy/signature-v4', 'a type: bedrock provider');

/** Where a provider's AWS credentials come from, and until when the last ones resolved are valid. */
export interface AwsCredentialStatus {
  /** `aws default chain` or `aws profile "<name>"`. */
  source: string;
  /** Expiry of the temporary credentials last resolved (ISO 8601), null for long-term keys or none resolved yet. */
  expires_at: string | null;
  /** The access key id's last four characters, never the secret (null before the first request). */
  access_key_hint: string | null;
}

/** One signer per provider: its credential chain and what it last resolved. */
class AwsSigner {
  private readonly signer: SignatureV4;
  readonly status: AwsCredentialStatus;

  constructor(
    readonly provider: string,
    region: string,
    profile: string | null,
  ) {
    const chain: AwsCredentialIdentityProvider = credentialProviders().fromNodeProviderChain(profile ? { profile } : {});
    this.status = { source: profile ? `aws profile "${profile}"` : 'aws default chain', expires_at: null, access_key_hint: null };
    const credentials = async (): Promise<AwsCredentialIdentity> => {
      let c: AwsCredentialIdentity;
      try {
        c = await chain();
      } catch (err) {
        throw new UpstreamCredentialsError(
          provider,
          this.status.source,
          `${(err as Error).message}; set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, a web identity token or an instance/task role for the gateway's process`,
          err,
        );
      }
      this.status.expires_at = c.expiration ? c.expiration.toISOString() : null;
      this.status.access_key_hint = c.accessKeyId.slice(-4);
      return c;
    };
    this.signer = new (signatureV4().SignatureV4)({ service: 'bedrock', region, credentials, sha256: hashNode().Hash.bind(null, 'sha256'), uriEscapePath: true });
  }

  /**
   * The headers with `authorization`, `x-amz-date` and (temporary credentials) `x-amz-security-token` added.
   * @param url the full request URL (its host is signed).
   * @throws UpstreamCredentialsError when no credentials can be resolved.
   */
  async sign(method: string, url: string, headers: Record<string, string>, body: Buffer | null): Promise<Record<string, string>> {
    const u = new URL(url);
    const query: Record<string, string> = {};
    for (const [k, v] of u.searchParams) query[k] = v;
    const signed = await this.signer.sign({
      method,
      protocol: u.protocol,
      hostname: u.hostname,
      port: u.port ? Number(u.port) : undefined,
      path: u.pathname,
      query,
      headers: { ...headers, host: u.host },
      body: body ?? undefined,
    });
    return signed.headers as Record<string, string>;
  }
}

const signers = new Map<string, AwsSigner>();

/**
 * The signer of a provider, created on first use and kept (with its memoized credentials) while the provider's
 * name, region and profile stay the same across config reloads.
 */
export function awsSignerFor(provider: string, region: string, profile: string | null): AwsSigner {
  const id = `${provider}\0${region}\0${profile ?? ''}`;
  let s = signers.get(id);
  if (!s) {
    s = new AwsSigner(provider, region, profile);
    for (const [other, old] of signers) if (old.provider === provider) signers.delete(other);
    signers.set(id, s);
  }
  return s;
}

/** Credential status by provider name, for `/admin/providers` (source and expiry, never a secret). */
export function awsCredentialStatus(): Record<string, AwsCredentialStatus> {
  return Object.fromEntries([...signers.values()].map((s) => [s.provider, { ...s.status }]));
}
