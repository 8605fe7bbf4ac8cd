// Shapes of the manager's REST API. Every shape the manager's OpenAPI document describes is
// taken from the types generated from it (schema.d.ts, `npm run api:types`), so they follow
// the handlers; only shapes the document has no schema for are written here by hand.
import type { components } from "./schema";

type Schemas = components["schemas"];

export type Job = Schemas["Job"];
/// Extension: where a gated job's review stands.
export type JobApproval = Schemas["JobApproval"];
/// Extension: `POST /api/v3/jobs/openjd`'s body.
export type OpenJdSubmission = Schemas["OpenJdSubmission"];
export type JobLimits = Schemas["JobLimits"];
export type JobRequirements = Schemas["JobRequirements"];
export type JobDependency = Schemas["JobDependency"];
export type JobDependencies = Schemas["JobDependencies"];
export type ResourcePool = Schemas["ResourcePool"];
export type Completion = Schemas["Completion"];
export type JobCompletion = Schemas["JobCompletion"];
export type CompletionEstimates = Schemas["CompletionEstimates"];

export type TaskWorkerRef = Schemas["TaskWorker"];
export type TaskSummary = Schemas["TaskSummary"];
export type Task = Schemas["Task"];
export type TaskPage = Schemas["TaskPage"];
export type BlocklistEntry = Schemas["JobBlocklistEntry"];
export type WhyAnswer = Schemas["WhyNotRunning"];

export type WorkerSummary = Schemas["WorkerSummary"];
export type WorkerTask = Schemas["WorkerTask"];
export type Worker = Schemas["Worker"];
export type WorkerTag = Schemas["WorkerTag"];
export type SleepSchedule = Schemas["WorkerSleepSchedule"];

export type FarmSummary = Schemas["FarmSummary"];
export type ManagerRole = Schemas["ManagerRole"];
export type PreviewImage = Schemas["JobPreviewImage"];
export type RenderedFrame = Schemas["RenderedFrame"];
export type PreviewVideoInfo = Schemas["PreviewVideoInfo"];
export type RegistrationSecret = Schemas["RegistrationSecret"];
export type AuditEntry = Schemas["AuditEntry"];
export type NotificationRule = Schemas["NotificationRule"];
export type NotificationRuleInput = Schemas["NotificationRuleInput"];
export type NotificationDelivery = Schemas["NotificationDelivery"];

/// Counts per status (jobs, tasks, workers): a plain map, named for readability.
export type Counts = Record<string, number>;

/// One setting of a job type. Hand-written: the document leaves the items of
/// `AvailableJobType.settings` untyped, but the settings form needs their fields.
export interface SettingSpec {
  key: string;
  type: "string" | "int32" | "float" | "bool";
  subtype?: "file_path" | "dir_path" | "file_name" | "hashed_file_path";
  choices?: string[];
  propargs?: Record<string, unknown>;
  description?: string;
  label?: string;
  default?: unknown;
  eval?: string;
  visible?: "visible" | "hidden" | "submission" | "web";
  required?: boolean;
  editable?: boolean;
}

/// A job type as the document describes it, with its settings read as `SettingSpec`s.
export type JobType = Omit<Schemas["AvailableJobType"], "settings"> & {
  settings: SettingSpec[];
};

/// One message of the event stream: what changed; the page re-reads it. Hand-written: the
/// stream is Server-Sent Events, which the document describes in prose, not as a schema.
export interface ChangeEvent {
  kind: "job" | "task" | "worker" | "task-log" | "last-rendered" | "job-deleted" | "resync";
  job_id?: string;
  task_id?: string;
  worker_id?: string;
  /// On `last-rendered` of a numbered frame: the frame (`task_id`: the task that rendered it).
  frame?: number;
}
