import { describe, expect, it } from "vitest";
import type { TaskSummary } from "../src/api/types";
import { TaskPageCache } from "../src/state/taskPages";

function tasks(from: number, count: number, status: TaskSummary["status"] = "queued"): TaskSummary[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `t${from + i}`,
    name: `task ${from + i}`,
    status,
    index_in_job: from + i + 1,
    priority: 50,
    task_type: "misc",
    updated: "",
    steps_completed: 0,
    steps_total: 1,
    activity: "",
  }));
}

describe("task page cache", () => {
  it("asks for the first page before the total is known, then only for pages in view", () => {
    const cache = new TaskPageCache(100, 5);
    expect(cache.missingPages(0, 40)).toEqual([0]);
    cache.markLoading(0);
    expect(cache.missingPages(0, 40)).toEqual([]);
    cache.store(cache.generation, 0, tasks(0, 100), 100_000);
    expect(cache.total).toBe(100_000);
    expect(cache.missingPages(99_950, 99_999 + 20)).toEqual([999]);
    expect(cache.missingPages(150, 260)).toEqual([1, 2]);
    expect(cache.row(5)?.id).toBe("t5");
    expect(cache.row(150)).toBeUndefined();
  });

  it("keeps a bounded number of pages, dropping the least recently read", () => {
    const cache = new TaskPageCache(10, 3);
    for (const page of [0, 1, 2, 3]) cache.store(cache.generation, page, tasks(page * 10, 10), 1000);
    expect(cache.pageCount).toBe(3);
    expect(cache.row(0)).toBeUndefined();
    expect(cache.has("t0")).toBe(false);
    expect(cache.row(35)?.id).toBe("t35");
  });

  it("patches a held task in place and ignores others", () => {
    const cache = new TaskPageCache(10, 3);
    cache.store(cache.generation, 0, tasks(0, 10), 10);
    expect(cache.patch({ ...tasks(3, 1)[0], status: "active" })).toBe(true);
    expect(cache.row(3)?.status).toBe("active");
    expect(cache.patch({ ...tasks(50, 1)[0] })).toBe(false);
  });

  it("drops answers to requests made before a reset", () => {
    const cache = new TaskPageCache(10, 3);
    const before = cache.generation;
    cache.markLoading(0);
    cache.reset();
    expect(cache.store(before, 0, tasks(0, 10), 10)).toBe(false);
    expect(cache.total).toBeNull();
    expect(cache.missingPages(0, 5)).toEqual([0]);
  });

  it("forgets pages so they are read again", () => {
    const cache = new TaskPageCache(10, 5);
    cache.store(cache.generation, 0, tasks(0, 10), 30);
    cache.store(cache.generation, 1, tasks(10, 10), 30);
    expect(cache.heldPages(0, 25)).toEqual([0, 1]);
    cache.forget([1]);
    expect(cache.missingPages(0, 25)).toEqual([1, 2]);
  });

  it("forgets every page but those in view when tasks were replaced", () => {
    const cache = new TaskPageCache(10, 5);
    for (const page of [0, 1, 2]) cache.store(cache.generation, page, tasks(page * 10, 10), 30);
    cache.forgetAllBut([1]);
    expect(cache.heldPages(0, 29)).toEqual([1]);
    expect(cache.has("t5")).toBe(false);
    expect(cache.has("t15")).toBe(true);
  });
});
