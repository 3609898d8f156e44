import { describe, expect, it } from "vitest";
import { parseDotenv } from "../../src/secrets/dotenv.js";

describe("parseDotenv", () => {
  it("reads KEY=VALUE lines, skipping blanks and comments, with an optional export prefix", () => {
    expect(parseDotenv("# comment\n\nA=1\nexport B=two\n  C = three  \n").fields).toEqual({
      A: "1",
      B: "two",
      C: "three",
    });
  });

  it("cuts an inline comment only after whitespace in an unquoted value", () => {
    expect(parseDotenv("A=x # note\nB=x#not-a-comment\nC=#\n").fields).toEqual({
      A: "x",
      B: "x#not-a-comment",
      C: "",
    });
  });

  it("takes single and backtick quotes literally and expands escapes in double quotes", () => {
    const { fields } = parseDotenv(
      `A='a\\nb $X # c'\nB=\`it's "both"\`\nC="tab\\tnl\\nquote\\"slash\\\\"\n`,
    );

    expect(fields).toEqual({ A: "a\\nb $X # c", B: `it's "both"`, C: 'tab\tnl\nquote"slash\\' });
  });

  it("reads quoted values spanning lines, and Windows line endings", () => {
    expect(parseDotenv('KEY="one\r\ntwo"\r\nNEXT=3\r\n').fields).toEqual({
      KEY: "one\ntwo",
      NEXT: "3",
    });
  });

  it("reports malformed lines and unterminated quotes by number", () => {
    expect(parseDotenv("A=1\njust text\nB='open\nC=2").invalidLines).toEqual([2, 3]);
  });
});
