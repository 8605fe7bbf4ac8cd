// Which job changes are worth a desktop notification, as a pure function (tested in
// tests/desktopNotify.test.ts): a job that entered completed, failed or awaiting-approval.

const VERBS: Record<string, string> = {
  completed: "completed",
  failed: "failed",
  "awaiting-approval": "is awaiting approval",
};

export interface SeenJob {
  name: string;
  status: string;
  /// RFC 3339.
  updated: string;
}

/// The notification text for `job`, or null. `previous` is the status last seen of it
/// (undefined: never seen; then it counts only if it changed after `sinceMs`).
export function desktopMessage(previous: string | undefined, job: SeenJob, sinceMs: number): string | null {
  const verb = VERBS[job.status];
  if (!verb) return null;
  if (previous === undefined) {
    const updated = Date.parse(job.updated);
    if (Number.isNaN(updated) || updated < sinceMs) return null;
  } else if (previous === job.status) {
    return null;
  }
  return `Job “${job.name}” ${verb}`;
}
