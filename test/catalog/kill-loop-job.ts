// biome-ignore-all lint/suspicious/noTemplateCurlyInString: job definitions hold ${...} references on purpose

/**
 * The job the kill loop builds over and over. Build `i` carries `i` in a view and in
 * every secret value, and alternates one persistent secret between `b` and `c`, so
 * a catalog paired with another build's secrets shows.
 */
export function killLoopJob(i: number) {
  const secret = (name: string, persistent: boolean) => ({
    name,
    type: "http",
    bearer_token: "${secret:tok}",
    persistent,
    scope: `https://${name}.example/`,
  });
  return {
    definition: {
      version: 1,
      duckdb: {
        database: "out/${tenant}.duckdb",
        secrets: [secret("a", true), secret(i % 2 === 1 ? "b" : "c", true), secret("t", false)],
      },
      views: [
        { name: "iteration", sql: `SELECT ${i} AS i` },
        { name: "bulk", sql: "SELECT * FROM range(5000)", materialize: "table" },
      ],
    },
    secrets: { tok: killLoopToken(i) },
  };
}

export function killLoopToken(i: number): string {
  return `FAKE_KILL_${i}_TOKEN`;
}
