import { describe, expect, it } from "vitest";
import { mergeTail } from "../src/state/logTail";

const line = (n: number) => `2026-01-01T00:00:${String(n).padStart(2, "0")} line number ${n}\n`;
const lines = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => line(from + i)).join("");

describe("joining log tails", () => {
  it("takes the first tail as is", () => {
    expect(mergeTail("", lines(1, 3))).toEqual({ text: lines(1, 3), gap: false });
  });

  it("appends only what is new where the tails overlap", () => {
    const shown = lines(1, 10);
    const tail = lines(6, 14);
    expect(mergeTail(shown, tail)).toEqual({ text: lines(1, 14), gap: false });
  });

  it("changes nothing when the log did not grow", () => {
    expect(mergeTail(lines(1, 10), lines(5, 10))).toEqual({ text: lines(1, 10), gap: false });
  });

  it("marks a gap when the log grew by more than a tail", () => {
    const merged = mergeTail(lines(1, 10), lines(40, 45));
    expect(merged.gap).toBe(true);
    expect(merged.text.endsWith(lines(40, 45))).toBe(true);
  });
});
