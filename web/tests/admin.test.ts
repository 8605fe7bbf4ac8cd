import { describe, expect, it } from "vitest";
import type { AuditEntry } from "../src/api/types";
import { AuditPages, maskSecret, olderCursor } from "../src/state/admin";

const entry = (id: number): AuditEntry => ({
  id,
  at: "2026-01-01T00:00:00Z",
  actor: "anonymous",
  role: null,
  remote: "127.0.0.1",
  method: "POST",
  path: "/api/v3/jobs",
  status: 200,
});
const entries = (from: number, count: number) => Array.from({ length: count }, (_, i) => entry(from - i));

describe("the registration secret on screen", () => {
  it("shows only the last four characters of a long secret", () => {
    expect(maskSecret("abcdefghijklmnop")).toBe("••••••••••••mnop");
  });

  it("hides short secrets entirely, and hides their length", () => {
    expect(maskSecret("abc")).toBe("••••••••");
    expect(maskSecret("abcdefgh")).toBe("••••••••");
  });
});

describe("paging the audit log", () => {
  it("continues before the oldest entry of a full page", () => {
    expect(olderCursor(entries(100, 50), 50)).toBe(51);
  });

  it("has no older page after a short one", () => {
    expect(olderCursor(entries(10, 10), 50)).toBeUndefined();
    expect(olderCursor([], 50)).toBeUndefined();
  });

  it("walks older and back to the newest page", () => {
    const pages = new AuditPages();
    expect(pages.atNewest).toBe(true);
    expect(pages.current).toBeUndefined();
    expect(pages.older(entries(100, 2), 2)).toBe(true);
    expect(pages.current).toBe(99);
    expect(pages.older(entries(98, 2), 2)).toBe(true);
    expect(pages.current).toBe(97);
    expect(pages.older(entries(96, 1), 2)).toBe(false);
    expect(pages.current).toBe(97);
    pages.newer();
    expect(pages.current).toBe(99);
    pages.newer();
    pages.newer();
    expect(pages.atNewest).toBe(true);
    expect(pages.current).toBeUndefined();
  });
});
