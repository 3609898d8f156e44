import { describe, expect, it } from "vitest";
import type { LogLine } from "../cli/daemon-logs.js";
import { buildIntervals, overlappingBuilds } from "./build-intervals.js";

const at = (s: number) => new Date(Date.UTC(2026, 0, 1, 0, 0, s)).toISOString();
const started = (runId: string, tenant: string, s: number, attempt = 1): LogLine => ({
  msg: "run started",
  runId,
  tenant,
  attempt,
  scheduledAt: at(0),
  time: at(s),
});
const ended = (runId: string, s: number, msg = "run succeeded", attempt = 1): LogLine => ({
  msg,
  runId,
  attempt,
  time: at(s),
});
const catalogOf = (tenant: string) => `catalogs/${tenant}.duckdb`;

describe("overlapping builds per catalog", () => {
  it("finds two replicas building one catalog at once", () => {
    const builds = buildIntervals(
      [
        { id: "r0", lines: [started("a", "t0", 1), ended("a", 5)], exitedAt: undefined },
        { id: "r1", lines: [started("b", "t0", 4), ended("b", 8)], exitedAt: undefined },
      ],
      catalogOf,
    );
    expect(overlappingBuilds(builds)).toEqual([
      `catalogs/t0.duckdb: r0 t0@${at(0)}#1 and r1 t0@${at(0)}#1`,
    ]);
  });

  it("finds a build inside a longer one that started before a short one", () => {
    const builds = buildIntervals(
      [
        { id: "r0", lines: [started("a", "t0", 1), ended("a", 10)], exitedAt: undefined },
        {
          id: "r1",
          lines: [started("b", "t0", 2), ended("b", 3), started("c", "t0", 6), ended("c", 7)],
          exitedAt: undefined,
        },
      ],
      catalogOf,
    );
    expect(overlappingBuilds(builds)).toHaveLength(2);
  });

  it("ends a killed replica's unfinished build when it exited, not before", () => {
    const killed = { id: "r0", lines: [started("a", "t0", 1)], exitedAt: Date.parse(at(6)) };
    const takeover = (s: number) => ({
      id: "r1",
      lines: [started("b", "t0", s, 2), ended("b", s + 3, "run succeeded", 2)],
      exitedAt: undefined,
    });
    expect(overlappingBuilds(buildIntervals([killed, takeover(5)], catalogOf))).toHaveLength(1);
    expect(overlappingBuilds(buildIntervals([killed, takeover(6)], catalogOf))).toEqual([]);
  });

  it("treats a build with no end and no exit as still running", () => {
    const builds = buildIntervals(
      [
        { id: "r0", lines: [started("a", "t0", 1)], exitedAt: undefined },
        { id: "r1", lines: [started("b", "t0", 100), ended("b", 101)], exitedAt: undefined },
      ],
      catalogOf,
      Date.parse(at(200)),
    );
    expect(overlappingBuilds(builds)).toHaveLength(1);
  });

  it("accepts back-to-back builds of one catalog and parallel builds of different ones", () => {
    const builds = buildIntervals(
      [
        {
          id: "r0",
          lines: [started("a", "t0", 1), ended("a", 3, "run failure"), started("c", "t1", 1)],
          exitedAt: Date.parse(at(9)),
        },
        { id: "r1", lines: [started("b", "t0", 3), ended("b", 5)], exitedAt: undefined },
      ],
      catalogOf,
    );
    expect(builds).toHaveLength(3);
    expect(overlappingBuilds(builds)).toEqual([]);
  });
});
