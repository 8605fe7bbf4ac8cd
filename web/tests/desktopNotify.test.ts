import { describe, expect, it } from "vitest";
import { desktopMessage } from "../src/state/desktopMessage";

const at = (iso: string) => ({ name: "shot 10", status: "completed", updated: iso });

describe("desktopMessage", () => {
  const since = Date.parse("2026-12-04T20:00:00Z");

  it("announces a job entering a notifying status", () => {
    expect(desktopMessage("active", at("2026-12-04T19:00:00Z"), since)).toBe("Job “shot 10” completed");
    expect(desktopMessage("active", { ...at("x"), status: "awaiting-approval" }, since)).toBe(
      "Job “shot 10” is awaiting approval",
    );
    expect(desktopMessage("active", { ...at("x"), status: "failed" }, since)).toBe("Job “shot 10” failed");
  });

  it("stays quiet for the same status, other statuses, and old news", () => {
    expect(desktopMessage("completed", at("2026-12-04T21:00:00Z"), since)).toBeNull();
    expect(desktopMessage("queued", { ...at("x"), status: "active" }, since)).toBeNull();
    expect(desktopMessage(undefined, at("2026-12-04T19:59:59Z"), since)).toBeNull();
    expect(desktopMessage(undefined, at("2026-12-04T20:00:01Z"), since)).toBe("Job “shot 10” completed");
  });
});
