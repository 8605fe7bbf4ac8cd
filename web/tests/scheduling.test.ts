import { describe, expect, it } from "vitest";
import {
  type SchedulingInputs,
  describeChunking,
  describeScheduling,
  emptySchedulingInputs,
  jobIdsError,
  ordinal,
  parseJobIds,
  schedulingErrors,
  toScheduling,
} from "../src/forms/scheduling";
import { submission } from "../src/forms/settingsForm";

const A = "1b4e28ba-2fa1-11d2-883f-0016d3cca427";
const B = "6fa459ea-ee8a-3ca4-894e-db77e160355e";
const POOLS = [
  { name: "licence", size: 2, in_use: 0 },
  { name: "gpu-slot", size: 8, in_use: 3 },
];

function inputs(fields: Partial<SchedulingInputs>): SchedulingInputs {
  return { ...emptySchedulingInputs(), ...fields };
}

describe("job scheduling inputs", () => {
  it("sends nothing when nothing is filled in", () => {
    expect(toScheduling(emptySchedulingInputs())).toEqual({});
    expect(toScheduling(inputs({ pools: { licence: "0", "gpu-slot": "" }, resourceTaskTypes: "blender" }))).toEqual({});
    expect(schedulingErrors(emptySchedulingInputs(), POOLS)).toEqual({});
  });

  it("turns the inputs into the submission's fields", () => {
    const fields = toScheduling({
      dependsOn: `${A}, ${B.toUpperCase()}\n${A}`,
      pools: { licence: "1", "gpu-slot": "0" },
      resourceTaskTypes: "blender, ffmpeg blender",
      maxWorkers: "2",
      previewEvery: "10",
      targetMinutes: "",
    });
    expect(fields).toEqual({
      depends_on: [A, B],
      limits: { resources: { licence: 1 }, resource_task_types: ["blender", "ffmpeg"], max_workers: 2 },
      preview_first_every: 10,
    });
    const job = submission({
      name: "x",
      jobType: { name: "t", label: "T", etag: "e", settings: [] },
      priority: 50,
      settings: {},
      scheduling: fields,
    });
    expect(job.depends_on).toEqual([A, B]);
    expect(job.limits).toEqual(fields.limits);
    expect(job.preview_first_every).toBe(10);
  });

  it("takes the numbers a number input hands over", () => {
    const typed = { pools: { licence: 1 }, maxWorkers: 3, previewEvery: 4 } as unknown as Partial<SchedulingInputs>;
    expect(schedulingErrors(inputs(typed), POOLS)).toEqual({});
    expect(toScheduling(inputs(typed))).toEqual({
      limits: { resources: { licence: 1 }, max_workers: 3 },
      preview_first_every: 4,
    });
  });

  it("names what was typed wrong", () => {
    const errors = schedulingErrors(
      inputs({
        dependsOn: `${A} not-a-job`,
        pools: { licence: "3", "gpu-slot": "1.5" },
        maxWorkers: "0",
        previewEvery: "1",
      }),
      POOLS,
    );
    expect(Object.keys(errors).sort()).toEqual(["dependsOn", "maxWorkers", "pool:gpu-slot", "pool:licence", "previewEvery"]);
    expect(errors.dependsOn).toContain("not-a-job");
    expect(errors["pool:licence"]).toContain("only 2");
  });

  it("sends a target task duration for adaptive chunking", () => {
    expect(schedulingErrors(inputs({ targetMinutes: "2.5" }), POOLS)).toEqual({});
    expect(toScheduling(inputs({ targetMinutes: " 2.5 " }))).toEqual({ target_task_minutes: 2.5 });
    // A number input hands over a number.
    const typed = { targetMinutes: 1440 } as unknown as Partial<SchedulingInputs>;
    expect(toScheduling(inputs(typed))).toEqual({ target_task_minutes: 1440 });
    const job = submission({
      name: "x",
      jobType: { name: "simple-blender-render", label: "T", etag: "e", settings: [] },
      priority: 50,
      settings: {},
      scheduling: toScheduling(inputs({ targetMinutes: "5" })),
    });
    expect(job.target_task_minutes).toBe(5);
    expect(job).not.toHaveProperty("preview_first_every");
  });

  it("keeps the target task duration within what the manager takes", () => {
    for (const bad of ["0", "-1", "1441", "abc", "1e400"]) {
      expect(schedulingErrors(inputs({ targetMinutes: bad }), POOLS), bad).toHaveProperty("targetMinutes");
    }
    expect(schedulingErrors(inputs({ targetMinutes: "0.5" }), POOLS)).toEqual({});
    expect(schedulingErrors(inputs({ targetMinutes: "1440" }), POOLS)).toEqual({});
  });

  it("refuses a target task duration together with preview first", () => {
    const errors = schedulingErrors(inputs({ targetMinutes: "5", previewEvery: "10" }), POOLS);
    expect(Object.keys(errors)).toEqual(["targetMinutes"]);
    expect(errors.targetMinutes).toContain("preview first");
  });

  it("wants units of a pool for task types that hold them", () => {
    expect(schedulingErrors(inputs({ resourceTaskTypes: "blender" }), POOLS)).toHaveProperty("resourceTaskTypes");
    expect(schedulingErrors(inputs({ resourceTaskTypes: "blender", pools: { licence: "1" } }), POOLS)).toEqual({});
  });
});

describe("job ids", () => {
  it("reads comma or space separated ids", () => {
    expect(parseJobIds(` ${A},,${B}  ${A} `)).toEqual([A, B]);
    expect(parseJobIds("")).toEqual([]);
  });

  it("refuses what is not a job id, and the job itself", () => {
    expect(jobIdsError(`${A} ${B}`)).toBeUndefined();
    expect(jobIdsError("")).toBeUndefined();
    expect(jobIdsError("12345")).toContain("12345");
    expect(jobIdsError(A.toUpperCase(), A)).toBe("A job cannot depend on itself");
  });
});

describe("describing a job's scheduling", () => {
  it("says what the job limits", () => {
    expect(
      describeScheduling({
        limits: { resources: { licence: 1 }, resource_task_types: ["blender"], max_workers: 2 },
        preview_first_every: 10,
      }),
    ).toBe("licence × 1 per task (blender tasks only), at most 2 workers, preview first every 10th");
    expect(describeScheduling({ limits: { resources: { a: 1, b: 2 }, max_workers: 1 } })).toBe("a × 1, b × 2 per task, at most 1 worker");
    expect(describeScheduling({ preview_first_every: 3 })).toBe("preview first every 3rd");
    expect(describeScheduling({})).toBe("");
  });

  it("says when chunks are regrouped towards a target", () => {
    expect(describeChunking({ target_task_minutes: 5 })).toBe("Adaptive chunks, target 5 min");
    expect(describeChunking({ target_task_minutes: 2.5 })).toBe("Adaptive chunks, target 2.5 min");
    expect(describeChunking({ target_task_minutes: 1 / 3 })).toBe("Adaptive chunks, target 0.33 min (20 s)");
    expect(describeChunking({ target_task_minutes: 0.05 })).toBe("Adaptive chunks, target 0.05 min (3 s)");
    expect(describeChunking({})).toBe("");
  });

  it("counts in English", () => {
    expect([1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101, 111].map(ordinal)).toEqual([
      "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st", "111th",
    ]);
  });
});
