import { expect, it } from "vitest";
import { describePg, withClient } from "./pg.js";

describePg("the test database", () => {
  it("is a real PostgreSQL reachable at DUCKCRON_TEST_PG", async () => {
    const { rows } = await withClient((c) =>
      c.query<{ v: string }>("SELECT current_setting('server_version_num') AS v"),
    );
    expect(Number(rows[0]?.v)).toBeGreaterThanOrEqual(120000);
  });
});
