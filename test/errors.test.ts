import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../src/errors.js";

describe("error codes", () => {
  const doc = readFileSync(new URL("../docs/errors.md", import.meta.url), "utf8");
  const documented = [...doc.matchAll(/^\| `([A-Z_]+)`\s*\|/gm)].map((m) => m[1]);

  it("are documented in docs/errors.md, in the same order, and nothing else is", () => {
    expect(documented).toEqual(Object.keys(ErrorCodes));
  });
});
