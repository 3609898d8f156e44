import type { SecretsBackendConfig } from "../config/runner-schema.js";
import type { SecretBackend } from "./backend.js";

export interface BackendContext {
  /** The folder holding runner.yaml; relative paths in the backend config start here. */
  baseDir: string;
  /** The environment the env backend reads; process.env when absent. */
  env?: NodeJS.ProcessEnv | undefined;
}

/**
 * Builds the configured backend. Each case imports its module on demand, so a
 * command that never fetches (validate, plan with env) never loads a cloud SDK.
 */
export async function createBackend(
  config: SecretsBackendConfig,
  ctx: BackendContext,
): Promise<SecretBackend> {
  switch (config.type) {
    case "env": {
      const { EnvBackend } = await import("./env.js");
      return new EnvBackend(config, ctx.env);
    }
    case "filesystem": {
      const { FilesystemBackend } = await import("./filesystem.js");
      return new FilesystemBackend(config, ctx.baseDir);
    }
    case "vault": {
      const { VaultBackend } = await import("./vault.js");
      return new VaultBackend(config, { env: ctx.env, baseDir: ctx.baseDir });
    }
    case "aws": {
      const { AwsBackend } = await import("./aws.js");
      return new AwsBackend(config);
    }
    case "azure": {
      const { AzureBackend } = await import("./azure.js");
      return new AzureBackend(config, { env: ctx.env, baseDir: ctx.baseDir });
    }
    case "gcp": {
      const { GcpBackend } = await import("./gcp.js");
      return new GcpBackend(config, { env: ctx.env, baseDir: ctx.baseDir });
    }
    default: {
      const never: never = config;
      // Only the type: the rest of the config may hold a token.
      throw new Error(
        `unhandled secrets backend type ${String((never as { type?: unknown }).type)}`,
      );
    }
  }
}
