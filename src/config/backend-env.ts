import type { AzureBackendConfig, SecretsBackendConfig } from "./runner-schema.js";

/**
 * What a backend reads from the environment when runner.yaml leaves it out. Checked
 * when the config loads, so `validate` fails where `start` would, not only the backend.
 */
export function backendEnvProblems(
  config: SecretsBackendConfig,
  env: NodeJS.ProcessEnv,
): { path: readonly string[]; message: string }[] {
  if (config.type === "azure") return azureEnvProblems(config, env);
  if (config.type !== "vault") return [];
  const problems: { path: readonly string[]; message: string }[] = [];
  if (config.url === undefined && !env.VAULT_ADDR) {
    problems.push({
      path: ["runner", "secrets"],
      message:
        "vault needs an address: set `url` (e.g. https://vault.example.com:8200) or VAULT_ADDR",
    });
  }
  if (config.auth === "token" && config.token === undefined && !env.VAULT_TOKEN) {
    problems.push({
      path: ["runner", "secrets"],
      message:
        "vault needs credentials: set `token` (e.g. token: ${env:VAULT_TOKEN}), VAULT_TOKEN, or auth: approle with role_id and secret_id",
    });
  }
  return problems;
}

/** The schema checks vault_url itself; AZURE_KEYVAULT_URL stands in for it when absent. */
function azureEnvProblems(
  config: AzureBackendConfig,
  env: NodeJS.ProcessEnv,
): { path: readonly string[]; message: string }[] {
  if (config.vault_url !== undefined) return [];
  const path = ["runner", "secrets"];
  const fromEnv = env.AZURE_KEYVAULT_URL || undefined;
  if (fromEnv === undefined) {
    return [
      {
        path,
        message:
          "type: azure needs vault_url, or AZURE_KEYVAULT_URL in the environment (e.g. https://my-vault.vault.azure.net)",
      },
    ];
  }
  let protocol: string;
  try {
    protocol = new URL(fromEnv).protocol;
  } catch {
    return [
      {
        path,
        message: "AZURE_KEYVAULT_URL is not a URL; set it to https://<vault>.vault.azure.net",
      },
    ];
  }
  if (protocol !== "https:" && !(protocol === "http:" && config.local_test_server)) {
    return [
      {
        path,
        message:
          "AZURE_KEYVAULT_URL is not https://; Key Vault is only reached over https (the bearer token would travel in clear)",
      },
    ];
  }
  return [];
}
