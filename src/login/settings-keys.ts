/**
 * The keys of Claude Code's settings files (`managed-settings.json` is one of them), as its settings reference
 * lists them: https://code.claude.com/docs/en/settings ("Available settings", "Permission settings", "Sandbox
 * settings"). A managed-settings policy with another top-level key loads with a warning naming it — Claude Code
 * adds settings often, so an unknown key is not an error — and `env` must map names to strings.
 */
export const SETTINGS_KEYS: ReadonlySet<string> = new Set([
  'apiKeyHelper',
  'allowManagedHooksOnly',
  'allowManagedMcpServersOnly',
  'allowManagedPermissionRulesOnly',
  'allowedHttpHookUrls',
  'allowedMcpServers',
  'alwaysThinkingEnabled',
  'attribution',
  'autoUpdatesChannel',
  'availableModels',
  'awsAuthRefresh',
  'awsCredentialExport',
  'cleanupPeriodDays',
  'companyAnnouncements',
  'deniedMcpServers',
  'disableAllHooks',
  'disabledMcpjsonServers',
  'enableAllProjectMcpServers',
  'enabledMcpjsonServers',
  'enabledPlugins',
  'env',
  'extraKnownMarketplaces',
  'fileSuggestion',
  'forceLoginMethod',
  'forceLoginOrgUUID',
  'hooks',
  'httpHookAllowedEnvVars',
  'includeCoAuthoredBy',
  'includeGitInstructions',
  'language',
  'model',
  'otelHeadersHelper',
  'outputStyle',
  'permissions',
  'plansDirectory',
  'prefersReducedMotion',
  'respectGitignore',
  'sandbox',
  'showTurnDuration',
  'spinnerTipsEnabled',
  'spinnerTipsOverride',
  'spinnerVerbs',
  'statusLine',
  'strictKnownMarketplaces',
  'terminalProgressBarEnabled',
]);

/**
 * What is wrong with a managed-settings object: `errors` (the client would reject or misread it: `env` not a
 * map of strings, `availableModels` not a list of strings) and `unknown` top-level keys (warned about).
 */
export function checkSettings(settings: Record<string, unknown>): { errors: string[]; unknown: string[] } {
  const errors: string[] = [];
  const env = settings.env;
  if (env !== undefined && (typeof env !== 'object' || env === null || Array.isArray(env) || Object.values(env).some((v) => typeof v !== 'string')))
    errors.push('env must map variable names to strings (quote numbers and booleans: "1", "true")');
  const models = settings.availableModels;
  if (models !== undefined && (!Array.isArray(models) || models.some((m) => typeof m !== 'string'))) errors.push('availableModels must be a list of model names');
  if (settings.permissions !== undefined && (typeof settings.permissions !== 'object' || settings.permissions === null || Array.isArray(settings.permissions)))
    errors.push('permissions must be a map (allow, ask, deny, defaultMode, …)');
  return { errors, unknown: Object.keys(settings).filter((k) => !SETTINGS_KEYS.has(k)) };
}
