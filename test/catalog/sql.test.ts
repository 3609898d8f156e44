import { DuckDBInstance } from "@duckdb/node-api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { quoteIdentifier, quoteLiteral } from "../../src/catalog/sql.js";
import { DuckcronError } from "../../src/errors.js";

const TRICKY = [
  "plain",
  "",
  "it's",
  "''",
  "back\\slash \\n \\'",
  "line\nbreak\r\n\ttab",
  'double "quotes"',
  "ünïcødé 🔑 日本語",
  "$$ dollar $1 $q$",
  "'; DROP TABLE x; --",
  "x' || (SELECT 1) || '",
  "E'\\x41'",
];

describe("quoteLiteral", () => {
  it("wraps in single quotes and doubles embedded ones, nothing else", () => {
    expect(quoteLiteral("it's")).toBe("'it''s'");
    expect(quoteLiteral("a\\b")).toBe("'a\\b'");
    expect(quoteLiteral("")).toBe("''");
    expect(quoteLiteral("'; DROP TABLE x; --")).toBe("'''; DROP TABLE x; --'");
  });

  it("never produces an E-prefixed string", () => {
    for (const value of TRICKY) expect(quoteLiteral(value).startsWith("'")).toBe(true);
  });

  describe("round-trips byte for byte through DuckDB", () => {
    let instance: DuckDBInstance;
    beforeAll(async () => {
      instance = await DuckDBInstance.create(":memory:");
    });
    afterAll(() => instance.closeSync());

    it.each(TRICKY)("%j", async (value) => {
      const connection = await instance.connect();
      try {
        const rows = (
          await connection.runAndReadAll(`SELECT ${quoteLiteral(value)} AS v`)
        ).getRows();
        expect(rows).toEqual([[value]]);
      } finally {
        connection.closeSync();
      }
    });
  });
});

describe("quoteIdentifier", () => {
  it("double-quotes safe names", () => {
    expect(quoteIdentifier("sales")).toBe('"sales"');
    expect(quoteIdentifier("_Sales_2024")).toBe('"_Sales_2024"');
    expect(quoteIdentifier("select")).toBe('"select"');
  });

  it.each([
    "",
    "1st",
    'a"b',
    "a b",
    "a-b",
    "a.b",
    "x; DROP TABLE y",
    'x" ; DROP TABLE y; --',
    "naïve",
    "line\nbreak",
    "back\\slash",
  ])("refuses %j with INVALID_NAME", (name) => {
    let caught: unknown;
    try {
      quoteIdentifier(name);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DuckcronError);
    expect((caught as DuckcronError).code).toBe("INVALID_NAME");
  });
});
