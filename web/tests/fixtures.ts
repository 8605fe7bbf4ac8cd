// Objects the tests build answers from: valid as the manager sends them, `fields` overriding.
import type { Job } from "../src/api/types";

/// A job as the manager lists it: active, nothing done yet.
export function job(id: string, fields: Partial<Job> = {}): Job {
  return {
    id,
    name: `job ${id}`,
    type: "echo-sleep-test",
    priority: 50,
    status: "active",
    activity: "",
    created: "2026-01-01T00:00:00.000Z",
    updated: "2026-01-01T00:00:00.000Z",
    steps_completed: 0,
    steps_total: 0,
    settings: {},
    metadata: {},
    submitter_platform: "linux",
    ...fields,
  };
}
