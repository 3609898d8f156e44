import type { SecretsBackendConfig } from "./runner-schema.js";

/**
 * What a backend reads from the environment when runner.yaml leaves it out. Checked
 * when the config loads, so `validate` fails where `start` would, not only the backend.
 */
export function backendEnvProblems(
  config: SecretsBackendConfig,
  env: NodeJS.ProcessEnv,
): { path: readonly string[]; message: string }[] {
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
