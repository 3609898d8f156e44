import { DuckDBInstance } from "@duckdb/node-api";

let memo: Promise<boolean> | undefined;

/**
 * Whether this DuckDB binds `$n` parameters inside CREATE SECRET. 1.5.6 does; the
 * 1.5.5 source still has a guard against it, so older builds may not. When this is
 * false, apply falls back to quoted literals (the values are then part of SQL text
 * that only DuckDB sees, and error texts are scrubbed as always).
 */
export function secretParametersSupported(): Promise<boolean> {
  memo ??= probe();
  return memo;
}

async function probe(): Promise<boolean> {
  let instance: DuckDBInstance | undefined;
  try {
    instance = await DuckDBInstance.create(":memory:", {
      allow_persistent_secrets: "false",
      autoinstall_known_extensions: "false",
      autoload_known_extensions: "false",
    });
    const connection = await instance.connect();
    try {
      const prepared = await connection.prepare(
        "CREATE TEMPORARY SECRET duckcron_self_test (TYPE http, BEARER_TOKEN $1, SCOPE [$2], VERIFY_SSL $3, EXTRA_HTTP_HEADERS MAP {'x': $4})",
      );
      prepared.bindVarchar(1, "duckcron-self-test");
      prepared.bindVarchar(2, "https://duckcron.invalid/self-test/");
      prepared.bindBoolean(3, true);
      prepared.bindVarchar(4, "header");
      await prepared.run();
      prepared.destroySync();
      const rows = (
        await connection.runAndReadAll(
          "SELECT count(*)::INTEGER AS n FROM duckdb_secrets() WHERE name = 'duckcron_self_test' AND list_contains(scope, 'https://duckcron.invalid/self-test/')",
        )
      ).getRowObjectsJS();
      return rows[0]?.n === 1;
    } finally {
      connection.closeSync();
    }
  } catch {
    return false;
  } finally {
    instance?.closeSync();
  }
}
