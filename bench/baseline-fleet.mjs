// The baseline of bench:fleet: what a hand-written @duckdb/node-api script needs to
// build the same tenants' catalogs safely with the same concurrency. Per catalog: read
// the secrets (env, or one HTTP request per secret from Vault), execute the planned
// statements into a temp file, CHECKPOINT, fsync, rename.
import { readFileSync } from "node:fs";
import { buildCatalogFile } from "./lib.mjs";

const [planFile] = process.argv.slice(2);
const { concurrency, secrets, tenants } = JSON.parse(readFileSync(planFile, "utf8"));

async function secretValues(tenant) {
  const values = new Map();
  for (const name of secrets.names) {
    if (secrets.type === "env") {
      values.set(
        name,
        process.env[`${secrets.prefix}${tenant.toUpperCase()}_${name.toUpperCase()}`],
      );
      continue;
    }
    const response = await fetch(`${secrets.url}/v1/secret/data/${tenant}`, {
      headers: { "x-vault-token": secrets.token },
    });
    if (!response.ok) throw new Error(`vault ${response.status} for ${tenant}`);
    values.set(name, (await response.json()).data.data[name]);
  }
  return values;
}

async function build({ tenant, target, options, statements }) {
  const values = await secretValues(tenant);
  await buildCatalogFile(target, options, statements, (v) =>
    typeof v === "object" && v?.secret ? values.get(v.secret) : v,
  );
}

let next = 0;
await Promise.all(
  Array.from({ length: concurrency }, async () => {
    while (next < tenants.length) await build(tenants[next++]);
  }),
);
