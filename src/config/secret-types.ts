/**
 * DuckDB secret types and their parameters, as DuckDB 1.5 defines them (the
 * `named_parameters` of each CREATE SECRET function). This table is the one place
 * that knows them: the job schema validates against it and the planner uses it to
 * choose parameter types. Keep it in step with the linked DuckDB version.
 */

export type ParamKind = "string" | "boolean" | "integer" | "map";

export interface ProviderSpec {
  params: Readonly<Record<string, ParamKind>>;
  /** Each inner list is "at least one of these"; a one-item list is simply required. */
  requires?: readonly (readonly string[])[];
}

export interface SecretTypeSpec {
  /** Extension that provides the type; null for types built into DuckDB. */
  extension: string | null;
  defaultProvider: string;
  providers: Readonly<Record<string, ProviderSpec>>;
  /** DuckDB ignores SCOPE for these; they are selected by name. */
  scoped: boolean;
  /** Friendly names (DuckDB's own aliases, Duckalog/skill formats) mapped to DuckDB's. */
  aliases?: Readonly<Record<string, string>>;
}

const PROXY = {
  http_proxy: "string",
  http_proxy_username: "string",
  http_proxy_password: "string",
} as const;

const S3_CONFIG = {
  key_id: "string",
  secret: "string",
  region: "string",
  session_token: "string",
  endpoint: "string",
  url_style: "string",
  kms_key_id: "string",
  use_ssl: "boolean",
  url_compatibility_mode: "boolean",
  requester_pays: "boolean",
  verify_ssl: "boolean",
  refresh: "string",
  refresh_info: "map",
  extra_http_headers: "map",
  ...PROXY,
} as const;

// The credential_chain provider comes from the separate `aws` extension.
const S3_CHAIN = {
  chain: "string",
  profile: "string",
  validation: "string",
  key_id: "string",
  secret: "string",
  region: "string",
  session_token: "string",
  endpoint: "string",
  url_style: "string",
  use_ssl: "boolean",
  url_compatibility_mode: "boolean",
  assume_role_arn: "string",
  external_id: "string",
  web_identity_token_file: "string",
  session_name: "string",
  refresh: "string",
  ...PROXY,
} as const;

const AZURE_COMMON = {
  account_name: "string",
  endpoint: "string",
  http_proxy: "string",
  proxy_user_name: "string",
  proxy_password: "string",
} as const;

const POSTGRES_KEYWORDS = [
  "host",
  "hostaddr",
  "port",
  "dbname",
  "user",
  "password",
  "passfile",
  "require_auth",
  "channel_binding",
  "connect_timeout",
  "client_encoding",
  "options",
  "application_name",
  "fallback_application_name",
  "keepalives",
  "keepalives_idle",
  "keepalives_interval",
  "keepalives_count",
  "tcp_user_timeout",
  "replication",
  "gssencmode",
  "sslmode",
  "requiressl",
  "sslnegotiation",
  "sslcompression",
  "sslcert",
  "sslkey",
  "sslkeylogfile",
  "sslpassword",
  "sslcertmode",
  "sslrootcert",
  "sslcrl",
  "sslcrldir",
  "sslsni",
  "requirepeer",
  "ssl_min_protocol_version",
  "ssl_max_protocol_version",
  "min_protocol_version",
  "max_protocol_version",
  "krbsrvname",
  "gsslib",
  "gssdelegation",
  "scram_client_key",
  "scram_server_key",
  "service",
  "target_session_attrs",
  "load_balance_hosts",
  "oauth_issuer",
  "oauth_client_id",
  "oauth_client_secret",
  "oauth_scope",
  "uri",
  "aws_rds_secret",
] as const;

const allStrings = (names: readonly string[]): Record<string, ParamKind> =>
  Object.fromEntries(names.map((n) => [n, "string" as const]));

export const SECRET_TYPES = {
  s3: {
    extension: "httpfs",
    defaultProvider: "config",
    scoped: true,
    providers: { config: { params: S3_CONFIG }, credential_chain: { params: S3_CHAIN } },
  },
  aws: {
    extension: "httpfs",
    defaultProvider: "config",
    scoped: true,
    providers: { config: { params: S3_CONFIG }, credential_chain: { params: S3_CHAIN } },
  },
  r2: {
    extension: "httpfs",
    defaultProvider: "config",
    scoped: true,
    providers: {
      config: { params: { ...S3_CONFIG, account_id: "string" } },
      credential_chain: { params: { ...S3_CHAIN, account_id: "string" } },
    },
  },
  gcs: {
    extension: "httpfs",
    defaultProvider: "config",
    scoped: true,
    providers: {
      config: { params: { ...S3_CONFIG, bearer_token: "string" } },
      credential_chain: { params: S3_CHAIN },
    },
  },
  azure: {
    extension: "azure",
    defaultProvider: "config",
    scoped: true,
    providers: {
      config: { params: { ...AZURE_COMMON, connection_string: "string" } },
      credential_chain: { params: { ...AZURE_COMMON, chain: "string" } },
      managed_identity: {
        params: {
          ...AZURE_COMMON,
          client_id: "string",
          object_id: "string",
          resource_id: "string",
        },
      },
      service_principal: {
        params: {
          ...AZURE_COMMON,
          tenant_id: "string",
          client_id: "string",
          client_secret: "string",
          client_certificate_path: "string",
        },
        requires: [["tenant_id"], ["client_id"], ["client_secret", "client_certificate_path"]],
      },
      access_token: {
        params: { ...AZURE_COMMON, access_token: "string" },
        requires: [["access_token"]],
      },
    },
  },
  postgres: {
    extension: "postgres_scanner",
    defaultProvider: "config",
    scoped: false,
    providers: { config: { params: allStrings(POSTGRES_KEYWORDS) } },
    aliases: { database: "dbname", hostname: "host", username: "user" },
  },
  mysql: {
    extension: "mysql_scanner",
    defaultProvider: "config",
    scoped: false,
    providers: {
      config: {
        params: allStrings([
          "host",
          "port",
          "user",
          "password",
          "database",
          "socket",
          "ssl_mode",
          "ssl_ca",
          "ssl_capath",
          "ssl_cert",
          "ssl_cipher",
          "ssl_crl",
          "ssl_crlpath",
          "ssl_key",
        ]),
      },
    },
    aliases: { dbname: "database", username: "user", hostname: "host" },
  },
  http: {
    extension: null,
    defaultProvider: "config",
    scoped: true,
    providers: {
      config: {
        params: {
          bearer_token: "string",
          extra_http_headers: "map",
          verify_ssl: "boolean",
          ...PROXY,
        },
      },
      env: {
        params: {
          bearer_token: "string",
          extra_http_headers: "map",
          verify_ssl: "boolean",
          ...PROXY,
        },
      },
    },
  },
  huggingface: {
    extension: "httpfs",
    defaultProvider: "config",
    scoped: true,
    providers: {
      config: { params: { token: "string" }, requires: [["token"]] },
      credential_chain: { params: {} },
    },
  },
  iceberg: {
    extension: "iceberg",
    defaultProvider: "config",
    scoped: false,
    providers: {
      config: {
        params: {
          client_id: "string",
          client_secret: "string",
          endpoint: "string",
          token: "string",
          oauth2_scope: "string",
          oauth2_server_uri: "string",
          oauth2_grant_type: "string",
          refresh_token: "string",
          expires_in: "integer",
          extra_http_headers: "map",
        },
        // Without TOKEN, DuckDB fetches one with the client credentials during CREATE SECRET.
        requires: [["token", "client_id"]],
      },
    },
  },
  ducklake: {
    extension: "ducklake",
    defaultProvider: "config",
    scoped: false,
    providers: {
      config: {
        params: {
          metadata_path: "string",
          data_path: "string",
          metadata_schema: "string",
          metadata_catalog: "string",
          metadata_parameters: "map",
          encrypted: "boolean",
        },
        requires: [["metadata_path"]],
      },
    },
  },
} as const satisfies Record<string, SecretTypeSpec>;

export type SecretType = keyof typeof SECRET_TYPES;
export const SECRET_TYPE_NAMES = Object.keys(SECRET_TYPES) as SecretType[];

export function secretTypeSpec(type: SecretType): SecretTypeSpec {
  return SECRET_TYPES[type];
}
