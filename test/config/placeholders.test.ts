import { describe, expect, it } from "vitest";
import { placeholderReason } from "../../src/config/placeholders.js";

describe("placeholderReason", () => {
  it.each([
    ["changeme", 'it contains "changeme"'],
    ["CHANGE_ME", 'it contains "changeme"'],
    ["pw-change-me-later", 'it contains "changeme"'],
    ["xxx", 'it contains "xxx"'],
    ["XXXXXXXX", 'it contains "xxx"'],
    ["sk-xxxx-xxxx", 'it contains "xxx"'],
    ["<your token>", "it is a <placeholder> in angle brackets"],
    ["TODO", 'it contains "TODO"'],
    ["todo: ask ops", 'it contains "TODO"'],
    ["REPLACE_ME", 'it contains "replace_me"'],
    ["replace-me", 'it contains "replace_me"'],
    ["your-api-key-here", 'it reads like "your-...-here"'],
    ["YOUR_SECRET_HERE", 'it reads like "your-...-here"'],
    ["AKIAIOSFODNN7EXAMPLE", "it is AWS's documented example access key id"],
    [
      "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      "it is AWS's documented example secret access key",
    ],
    ["", "it is empty"],
    ["   ", "it is empty"],
  ])("flags %j", (value, reason) => {
    expect(placeholderReason(value)).toBe(reason);
  });

  it.each([
    "AKIA2E0A8F3B244C9986",
    "s3cr3t-Pa55",
    "us-east-1",
    "mytodolist-token",
    "xx",
    "https://vault.example.com:8200",
  ])("accepts %j", (value) => {
    expect(placeholderReason(value)).toBeUndefined();
  });

  it("never repeats the value in its reason", () => {
    const value = "changeme-UNIQUE-4711";
    expect(placeholderReason(value)).not.toContain("4711");
  });
});
