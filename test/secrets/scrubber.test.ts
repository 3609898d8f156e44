import { describe, expect, it } from "vitest";
import { Scrubber } from "../../src/observe/scrubber.js";

describe("Scrubber", () => {
  it("masks every occurrence of a registered value", () => {
    const scrubber = new Scrubber();
    scrubber.add("hunter2");

    expect(scrubber.scrub("password hunter2, again hunter2.")).toBe("password ***, again ***.");
  });

  it("leaves text alone when nothing is registered or nothing matches", () => {
    const scrubber = new Scrubber();
    expect(scrubber.scrub("plain")).toBe("plain");
    scrubber.add("secret-value");
    expect(scrubber.scrub("plain")).toBe("plain");
  });

  it("masks the longer value whole when one value contains another", () => {
    const scrubber = new Scrubber();
    scrubber.add("abcd");
    scrubber.add("abcdefgh");

    expect(scrubber.scrub("x abcdefgh y abcd z")).toBe("x *** y *** z");
  });

  it("masks overlapping values as one span so no fragment of either survives", () => {
    const scrubber = new Scrubber();
    scrubber.add("alpha-beta");
    scrubber.add("beta-gamma");

    expect(scrubber.scrub("[alpha-beta-gamma]")).toBe("[***]");
  });

  it("masks the JSON-escaped form of a value", () => {
    const scrubber = new Scrubber();
    const value = 'pa"ss\\word\nline2';
    scrubber.add(value);

    expect(scrubber.scrub(JSON.stringify({ password: value }))).toBe('{"password":"***"}');
    // A JSON document quoted inside another JSON string (a log line carrying a payload).
    expect(scrubber.scrub(JSON.stringify({ msg: JSON.stringify({ password: value }) }))).toBe(
      '{"msg":"{\\"password\\":\\"***\\"}"}',
    );
  });

  it("masks the URL-encoded and SQL-quoted forms of a value", () => {
    const scrubber = new Scrubber();
    scrubber.add("p@ss w/rd's");

    expect(scrubber.scrub("postgres://u:p%40ss%20w%2Frd's@host")).toBe("postgres://u:***@host");
    expect(scrubber.scrub("?password=p%40ss+w%2Frd's")).toBe("?password=***");
    expect(scrubber.scrub("SECRET 'p@ss w/rd''s'")).toBe("SECRET '***'");
  });

  it("counts distinct values, ignoring empty strings and repeats", () => {
    const scrubber = new Scrubber();
    scrubber.add("one-1");
    scrubber.add("one-1");
    scrubber.add("");
    scrubber.add("two-2");

    expect(scrubber.size).toBe(2);
    expect(scrubber.scrub("one-1 two-2")).toBe("*** ***");
  });

  it("leaves values too short or too common to be credentials alone, so output stays readable", () => {
    const scrubber = new Scrubber();
    for (const trivial of ["1", "ab", "xyz", "true", "False", "null", "  "]) scrubber.add(trivial);

    expect(scrubber.size).toBe(0);
    expect(scrubber.scrub('{"ok":true,"n":1,"v":null}')).toBe('{"ok":true,"n":1,"v":null}');
  });

  it("masks unicode values", () => {
    const scrubber = new Scrubber();
    scrubber.add("密码🔑");

    expect(scrubber.scrub("key=密码🔑;")).toBe("key=***;");
    expect(scrubber.scrub(encodeURIComponent("密码🔑"))).toBe("***");
  });
});

describe("Scrubber with multi-line values", () => {
  it("masks a single line of a multi-line value when it is long enough to be distinctive", () => {
    const scrubber = new Scrubber();
    scrubber.add("-----BEGIN KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n}\n-----END KEY-----");

    expect(scrubber.scrub("bad line: MIIEvQIBADANBgkqhkiG9w0BAQEFAASC")).toBe("bad line: ***");
    expect(scrubber.scrub("a } b")).toBe("a } b");
  });

  it("masks the right values among tens of thousands (a daemon with a thousand tenants)", () => {
    const scrubber = new Scrubber();
    for (let i = 0; i < 20_000; i++) scrubber.add(`tenant-${i}-token-${(i * 7919).toString(36)}`);
    scrubber.add("needle-secret-value");

    const line = `{"msg":"failed","error":"bad token tenant-1234-token-${(1234 * 7919).toString(36)}","x":"needle-secret-value!"}`;
    expect(scrubber.scrub(line)).toBe('{"msg":"failed","error":"bad token ***","x":"***!"}');
    expect(scrubber.scrub("tenant-1234-token- is not a value")).toBe(
      "tenant-1234-token- is not a value",
    );
  });
});
