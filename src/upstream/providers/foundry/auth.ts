/**
 * Microsoft Entra ID access tokens for `type: foundry` providers without `keys:`, from Microsoft's own library
 * (`@azure/identity` `DefaultAzureCredential`: environment service principal, workload identity, managed identity,
 * Azure CLI / Developer CLI sign-in) for the scope `https://ai.azure.com/.default`, the scope Anthropic's Foundry
 * documentation gives (https://platform.claude.com/docs/en/build-with-claude/claude-in-microsoft-foundry, "Microsoft
 * Entra authentication"). `getBearerTokenProvider` caches each token and fetches a new one before it expires.
 */
import { UpstreamCredentialsError } from '../../../errors.js';
import { lazyModule } from '../../../lazy.js';

/** Microsoft's identity library, loaded when the first Foundry provider without keys makes its token source. */
const azureIdentity = lazyModule<typeof import('@azure/identity')>('@azure/identity', 'a type: foundry provider without keys');

/** The Entra ID scope of Claude in Microsoft Foundry. */
export const FOUNDRY_SCOPE = 'https://ai.azure.com/.default';

/** Where a provider's Entra tokens come from and when the last one was fetched (never a token). */
export interface EntraStatus {
  source: string;
  fetched_at: string | null;
}

/** One token source per provider. */
class EntraTokens {
  readonly status: EntraStatus = { source: 'microsoft entra id (DefaultAzureCredential)', fetched_at: null };
  private readonly provide: () => Promise<string>;

  constructor(readonly provider: string) {
    const { DefaultAzureCredential, getBearerTokenProvider } = azureIdentity();
    this.provide = getBearerTokenProvider(new DefaultAzureCredential(), FOUNDRY_SCOPE);
  }

  /**
   * A current access token (cached until shortly before it expires).
   * @throws UpstreamCredentialsError naming the provider when no credential of the chain gives one.
   */
  async token(): Promise<string> {
    try {
      const token = await this.provide();
      this.status.fetched_at = new Date().toISOString();
      return token;
    } catch (err) {
      throw new UpstreamCredentialsError(
        this.provider,
        this.status.source,
        `${(err as Error).message.split('\n')[0]}; give the provider keys:, or run the gateway with a managed or workload identity, AZURE_CLIENT_ID / AZURE_TENANT_ID / AZURE_CLIENT_SECRET, or az login`,
        err,
      );
    }
  }
}

const sources = new Map<string, EntraTokens>();

/** The token source of a provider (one per provider name, kept across reloads). */
export function entraTokensFor(provider: string): EntraTokens {
  let s = sources.get(provider);
  if (!s) sources.set(provider, (s = new EntraTokens(provider)));
  return s;
}

/** Token status by provider name, for `/admin/providers`. */
export function entraStatus(): Record<string, EntraStatus> {
  return Object.fromEntries([...sources.values()].map((s) => [s.provider, { ...s.status }]));
}
