import { describe, expect, it } from "vitest";
import { applicable, patchJobList, taskProgress } from "../src/state/jobList";
import { job } from "./fixtures";

describe("patching the jobs page", () => {
  const rows = [job("a"), job("b"), job("c")];

  it("patches a shown job in place when nothing can move it", () => {
    const patch = patchJobList({ rows, statuses: [], order: "created" }, [job("b", { status: "paused", updated: "later" })], []);
    expect(patch.reload).toBe(false);
    expect(patch.rows.map((j) => j.status)).toEqual(["active", "paused", "active"]);
    expect(rows[1].status).toBe("active");
  });

  it("reloads when a job leaves the status filter", () => {
    const patch = patchJobList({ rows, statuses: ["active"], order: "created" }, [job("b", { status: "completed" })], []);
    expect(patch.reload).toBe(true);
  });

  it("reloads when the change reorders the page", () => {
    expect(patchJobList({ rows, statuses: [], order: "priority" }, [job("a", { priority: 90 })], []).reload).toBe(true);
    expect(patchJobList({ rows, statuses: [], order: "updated" }, [job("a", { updated: "x" })], []).reload).toBe(true);
    expect(patchJobList({ rows, statuses: [], order: "created" }, [job("a", { priority: 90 })], []).reload).toBe(false);
  });

  it("reloads for a new job that matches, not for one that does not", () => {
    expect(patchJobList({ rows, statuses: [], order: "created" }, [job("new")], []).reload).toBe(true);
    expect(patchJobList({ rows, statuses: ["paused"], order: "created" }, [job("new")], []).reload).toBe(false);
  });

  it("reloads when a shown job was deleted, not for others", () => {
    expect(patchJobList({ rows, statuses: [], order: "created" }, [], ["b"]).reload).toBe(true);
    expect(patchJobList({ rows, statuses: [], order: "created" }, [], ["zzz"]).reload).toBe(false);
  });
});

describe("job progress and actions", () => {
  it("counts completed of all tasks", () => {
    expect(taskProgress({ completed: 3, queued: 5, active: 2 })).toEqual({ completed: 3, total: 10 });
    expect(taskProgress(undefined)).toEqual({ completed: 0, total: 0 });
  });

  it("applies bulk actions only to jobs in a status that allows them", () => {
    const jobs = [job("a", { status: "active" }), job("b", { status: "paused" }), job("c", { status: "completed" })];
    expect(applicable("pause", jobs).map((j) => j.id)).toEqual(["a"]);
    expect(applicable("resume", jobs).map((j) => j.id)).toEqual(["b"]);
    expect(applicable("requeue", jobs).map((j) => j.id)).toEqual(["a", "b", "c"]);
    expect(applicable("cancel", jobs).map((j) => j.id)).toEqual(["a", "b"]);
  });

  it("pauses and cancels a job waiting for its dependencies, as the manager allows", () => {
    const waiting = [job("w", { status: "waiting-for-dependencies" })];
    expect(applicable("pause", waiting)).toHaveLength(1);
    expect(applicable("cancel", waiting)).toHaveLength(1);
    expect(applicable("resume", waiting)).toHaveLength(0);
    expect(applicable("requeue", waiting)).toHaveLength(0);
  });
});
