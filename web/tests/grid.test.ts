import { describe, expect, it } from "vitest";
import type { Job, RenderedFrame, TaskSummary } from "../src/api/types";
import {
  cacheBusted,
  jobCards,
  mergeCounts,
  mergeFrames,
  mergeImages,
  mergeJobs,
  mergeTasks,
  newestFramePerTask,
  reconcileJobCards,
  reconcileTaskCards,
  taskCards,
  taskPercent,
} from "../src/state/grid";
import { job as renderJob } from "./fixtures";

// The grid's jobs are renders.
const job = (id: string, fields: Partial<Job> = {}): Job => renderJob(id, { type: "simple-blender-render", ...fields });

function task(id: string, fields: Partial<TaskSummary> = {}): TaskSummary {
  return {
    id,
    name: `render ${id}`,
    status: "queued",
    index_in_job: 1,
    priority: 50,
    task_type: "blender",
    updated: "2026-01-01T00:00:00.000Z",
    steps_completed: 0,
    steps_total: 1,
    activity: "",
    ...fields,
  };
}

const image = (job_id: string, updated: string) => ({
  job_id,
  image: `/job-files/job-${job_id}/${job_id}/last-rendered.jpg`,
  updated,
});

describe("cache-busting", () => {
  it("makes each version of an image its own URL", () => {
    const a = cacheBusted("/job-files/x/last-rendered.jpg", "2026-01-01T00:00:00.000Z");
    const b = cacheBusted("/job-files/x/last-rendered.jpg", "2026-01-01T00:00:00.001Z");
    expect(a).toBe("/job-files/x/last-rendered.jpg?v=2026-01-01T00%3A00%3A00.000Z");
    expect(a).not.toBe(b);
  });

  it("adds to a query the path already has", () => {
    expect(cacheBusted("/x.jpg?size=small", "t")).toBe("/x.jpg?size=small&v=t");
  });
});

describe("job cards", () => {
  const cards = jobCards(
    [job("a"), job("b"), job("c")],
    { a: { completed: 1, queued: 3 }, b: { completed: 2 } },
    [image("a", "t1")],
  );

  it("carry progress from task counts and an image only where one exists", () => {
    expect(cards.map((c) => [c.job.id, c.done, c.total, c.image !== null])).toEqual([
      ["a", 1, 4, true],
      ["b", 2, 2, false],
      ["c", 0, 0, false],
    ]);
    expect(cards[0].image).toContain("?v=t1");
  });

  it("keep unchanged cards as they are when a job event is merged", () => {
    const patch = mergeJobs(cards, [job("b", { status: "paused", updated: "later" })], [], []);
    expect(patch.reload).toBe(false);
    expect(patch.cards[0]).toBe(cards[0]);
    expect(patch.cards[2]).toBe(cards[2]);
    expect(patch.cards[1]).not.toBe(cards[1]);
    expect(patch.cards[1].job.status).toBe("paused");
    expect(patch.cards[1].done).toBe(2);
  });

  it("keep the very same card when a re-read job shows nothing new", () => {
    const patch = mergeJobs(cards, [job("a")], [], []);
    expect(patch.cards[0]).toBe(cards[0]);
  });

  it("drop a job that leaves the status filter or is deleted, without a reload", () => {
    const filtered = mergeJobs(cards, [job("a", { status: "completed" })], ["c"], ["active"]);
    expect(filtered.reload).toBe(false);
    expect(filtered.cards.map((c) => c.job.id)).toEqual(["b"]);
  });

  it("reload for a job new to the grid that matches the filter", () => {
    expect(mergeJobs(cards, [job("d")], [], []).reload).toBe(true);
    expect(mergeJobs(cards, [job("d", { status: "failed" })], [], ["active"]).reload).toBe(false);
    expect(mergeJobs(cards, [job("d")], ["d"], []).reload).toBe(false);
  });

  it("take new task counts only into the cards whose progress moved", () => {
    const next = mergeCounts(cards, { a: { completed: 1, queued: 3 }, c: { completed: 1, active: 1 } });
    expect(next[0]).toBe(cards[0]);
    expect(next[1]).toBe(cards[1]);
    expect([next[2].done, next[2].total]).toEqual([1, 2]);
  });

  it("keep unchanged cards across a reload of the whole grid", () => {
    const fresh = jobCards([job("c"), job("a", { status: "paused" }), job("b")], { a: { completed: 1, queued: 3 }, b: { completed: 2 } }, [image("a", "t1")]);
    const next = reconcileJobCards(cards, fresh);
    expect(next.map((c) => c.job.id)).toEqual(["c", "a", "b"]);
    expect(next[0]).toBe(cards[2]);
    expect(next[2]).toBe(cards[1]);
    expect(next[1]).toBe(fresh[1]);
  });

  it("swap an image on a last-rendered change, with a new cache-buster", () => {
    const next = mergeImages(cards, [image("a", "t2"), image("b", "t1")]);
    expect(next[0].image).toContain("?v=t2");
    expect(next[0].image).not.toBe(cards[0].image);
    expect(next[1].image).toContain("?v=t1");
    expect(next[2]).toBe(cards[2]);
    expect(mergeImages(cards, [image("a", "t1")])[0]).toBe(cards[0]);
  });
});

describe("task cards", () => {
  const frame = (task_id: string, n: number, updated: string): RenderedFrame => ({
    frame: n,
    task_id,
    image: `/job-files/job-j/j/frames/${String(n).padStart(6, "0")}.jpg`,
    updated,
  });
  const frames = [frame("t1", 1, "a"), frame("t1", 2, "b"), frame("t2", 3, "a"), frame("t2", 4, "a")];

  it("show each task's newest frame: the latest updated, the higher frame on a tie", () => {
    const newest = newestFramePerTask(frames);
    expect(newest.get("t1")?.frame).toBe(2);
    expect(newest.get("t2")?.frame).toBe(4);
  });

  const cards = taskCards([task("t1"), task("t2"), task("t3")], frames);

  it("have no image for a task without frames", () => {
    expect(cards.map((c) => c.frame)).toEqual([2, 4, null]);
    expect(cards[0].image).toBe("/job-files/job-j/j/frames/000002.jpg?v=b");
    expect(cards[2].image).toBeNull();
  });

  it("change only for the tasks whose events brought something new", () => {
    const next = mergeTasks(cards, [task("t2", { status: "active", progress: 40 }), task("t1"), task("t9")]);
    expect(next[0]).toBe(cards[0]);
    expect(next[2]).toBe(cards[2]);
    expect(next[1].task.status).toBe("active");
    expect(next[1].image).toBe(cards[1].image);
  });

  it("swap a task's image when it renders a newer frame", () => {
    const next = mergeFrames(cards, [...frames, frame("t3", 5, "c"), frame("t1", 2, "d")]);
    expect(next[1]).toBe(cards[1]);
    expect(next[2].frame).toBe(5);
    expect(next[0].image).toBe("/job-files/job-j/j/frames/000002.jpg?v=d");
  });

  it("keep their cards and images across a re-read of the task page", () => {
    const next = reconcileTaskCards(cards, [task("t1"), task("t2", { status: "active" }), task("t4")]);
    expect(next[0]).toBe(cards[0]);
    expect(next[1].task.status).toBe("active");
    expect(next[1].image).toBe(cards[1].image);
    expect(next[2]).toEqual({ task: task("t4"), frame: null, image: null });
  });

  it("show progress from the task's report, its steps, or complete", () => {
    expect(taskPercent(task("x", { progress: 41.6 }))).toBe(42);
    expect(taskPercent(task("x", { steps_completed: 1, steps_total: 4 }))).toBe(25);
    expect(taskPercent(task("x", { status: "completed", progress: 80 }))).toBe(100);
  });
});
