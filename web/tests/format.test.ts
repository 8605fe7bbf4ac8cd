import { describe, expect, it } from "vitest";
import { clock } from "../src/format";

// Local times, so that the answers do not depend on the time zone the tests run in.
const local = (...parts: [number, number, number, number, number, number?]) =>
  new Date(parts[0], parts[1] - 1, parts[2], parts[3], parts[4], parts[5] ?? 0).toISOString();
const now = new Date(2026, 2, 4, 12, 0, 0);

describe("clock", () => {
  it("gives the time of day for today", () => {
    expect(clock(local(2026, 3, 4, 14, 32), { now })).toBe("14:32");
    expect(clock(local(2026, 3, 4, 9, 5, 7), { now, seconds: true })).toBe("09:05:07");
  });

  it("names the day when it is not today", () => {
    expect(clock(local(2026, 3, 5, 0, 20), { now })).toBe("tomorrow 00:20");
    expect(clock(local(2026, 3, 9, 8, 0), { now })).toBe("2026-03-09 08:00");
    expect(clock(local(2026, 3, 3, 23, 59), { now })).toBe("2026-03-03 23:59");
  });

  it("shows a dash for nothing and keeps what it cannot read", () => {
    expect(clock(undefined)).toBe("—");
    expect(clock("soon")).toBe("soon");
  });
});
