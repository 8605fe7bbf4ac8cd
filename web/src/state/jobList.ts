// How the jobs page folds changed jobs into the page it shows. A change is patched in
// place when the job stays on the page where it is; anything that could move jobs between
// pages or reorder them makes the page reload from the server (which sorts and filters).
import type { Job } from "../api/types";

export interface JobListView {
  rows: Job[];
  /// Statuses the page is filtered to (all when empty).
  statuses: string[];
  /// The server-side order the page was read in.
  order: string;
}

export interface JobPatch {
  rows: Job[];
  /// The page must be read again for a correct answer.
  reload: boolean;
}

/// Orders in which a change of these fields can move a job.
const ORDER_FIELDS: Record<string, (keyof Job)[]> = {
  created: [],
  oldest: [],
  updated: ["updated"],
  priority: ["priority"],
  name: ["name"],
};

/// Folds `changed` jobs (freshly read) and `gone` ids (deleted) into the view.
export function patchJobList(view: JobListView, changed: Job[], gone: string[]): JobPatch {
  let reload = false;
  const rows = view.rows.slice();
  const position = new Map(rows.map((job, index) => [job.id, index]));
  for (const id of gone) {
    if (position.has(id)) reload = true;
  }
  const movers = ORDER_FIELDS[view.order] ?? ["updated", "priority", "name"];
  for (const job of changed) {
    const at = position.get(job.id);
    const matches = view.statuses.length === 0 || view.statuses.includes(job.status);
    if (at === undefined) {
      // New to this page: it may belong here (a new job, or one now matching the filter).
      if (matches) reload = true;
      continue;
    }
    if (!matches || movers.some((field) => rows[at][field] !== job[field])) reload = true;
    rows[at] = job;
  }
  return { rows, reload };
}

/// Completed and total tasks from a job's task counts per status.
export function taskProgress(counts: Record<string, number> | undefined): {
  completed: number;
  total: number;
} {
  if (!counts) return { completed: 0, total: 0 };
  const total = Object.values(counts).reduce((sum, n) => sum + n, 0);
  return { completed: counts.completed ?? 0, total };
}

/// The status each action requests, and the job statuses it may be requested from (the
/// manager has the final word and says why when it refuses).
export const JOB_ACTIONS: Record<string, { status: string; label: string; from: string[] }> = {
  pause: {
    status: "pause-requested",
    label: "Pause",
    from: ["waiting-for-dependencies", "queued", "active"],
  },
  resume: { status: "queued", label: "Resume", from: ["paused", "pause-requested"] },
  cancel: {
    status: "cancel-requested",
    label: "Cancel",
    from: [
      "waiting-for-dependencies",
      "queued",
      "active",
      "awaiting-approval",
      "pause-requested",
      "paused",
      "requeueing",
    ],
  },
  requeue: {
    status: "requeueing",
    label: "Requeue",
    from: ["completed", "canceled", "failed", "paused", "active", "queued"],
  },
};

/// The selected jobs an action applies to.
export function applicable(action: keyof typeof JOB_ACTIONS, jobs: Job[]): Job[] {
  const from = JOB_ACTIONS[action].from;
  return jobs.filter((job) => from.includes(job.status));
}
