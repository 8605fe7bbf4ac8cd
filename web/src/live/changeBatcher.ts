// Collects change events and hands them on in batches, so a burst of task updates on a
// big job costs one re-read per entity rather than one per event.
import type { ChangeEvent } from "../api/types";

export interface ChangeBatch {
  jobs: Set<string>;
  /// Task id → its job id.
  tasks: Map<string, string>;
  workers: Set<string>;
  taskLogs: Set<string>;
  lastRendered: Set<string>;
  /// Jobs whose deletion has finished: not to be read again.
  deletedJobs: Set<string>;
  /// The stream dropped events or reconnected: re-read everything shown.
  resync: boolean;
}

export function emptyBatch(): ChangeBatch {
  return {
    jobs: new Set(),
    tasks: new Map(),
    workers: new Set(),
    taskLogs: new Set(),
    lastRendered: new Set(),
    deletedJobs: new Set(),
    resync: false,
  };
}

/// Adds one event to a batch.
export function addToBatch(batch: ChangeBatch, event: ChangeEvent) {
  switch (event.kind) {
    case "job":
      if (event.job_id) batch.jobs.add(event.job_id);
      break;
    case "task":
      if (event.task_id && event.job_id) batch.tasks.set(event.task_id, event.job_id);
      break;
    case "worker":
      if (event.worker_id) batch.workers.add(event.worker_id);
      break;
    case "task-log":
      if (event.task_id) batch.taskLogs.add(event.task_id);
      break;
    case "last-rendered":
      if (event.job_id) batch.lastRendered.add(event.job_id);
      break;
    case "job-deleted":
      if (event.job_id) batch.deletedJobs.add(event.job_id);
      break;
    case "resync":
      batch.resync = true;
      break;
  }
}

export type Scheduler = (run: () => void, delayMs: number) => unknown;

/// Batches events for `delayMs` after the first one, then calls `flush` once.
export class ChangeBatcher {
  private batch: ChangeBatch | null = null;

  constructor(
    private readonly flush: (batch: ChangeBatch) => void,
    private readonly delayMs = 150,
    private readonly schedule: Scheduler = (run, delay) => setTimeout(run, delay),
  ) {}

  add(event: ChangeEvent) {
    if (!this.batch) {
      this.batch = emptyBatch();
      this.schedule(() => this.deliver(), this.delayMs);
    }
    addToBatch(this.batch, event);
  }

  private deliver() {
    const batch = this.batch;
    this.batch = null;
    if (batch) this.flush(batch);
  }
}
