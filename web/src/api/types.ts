// Shapes of the manager's REST API (Flamenco's, plus the extensions the manager marks).

export type Counts = Record<string, number>;

export interface Job {
  id: string;
  name: string;
  type: string;
  priority: number;
  status: string;
  activity: string;
  created: string;
  updated: string;
  steps_completed: number;
  steps_total: number;
  settings: Record<string, unknown>;
  metadata: Record<string, string>;
  submitter_platform: string;
  type_etag?: string;
  worker_tag?: string;
  delete_requested_at?: string;
  /// Extension: what the job asks of its workers (absent: nothing).
  requirements?: JobRequirements;
  /// Extension: resource pools it holds per task, and its worker limit (absent: none).
  limits?: JobLimits;
  /// Extension: the jobs it waits for (only in one job's answer, never in lists).
  depends_on?: string[];
  /// Extension: every Nth task is handed out first, for an early preview.
  preview_first_every?: number;
  /// Extension: adaptive chunking aims at tasks of about this many minutes (absent: chunks
  /// stay as authored); queued chunks are regrouped as chunks finish.
  target_task_minutes?: number;
  /// Extension: the approval gate (absent: the job type has none) and its review.
  approval?: JobApproval;
  /// Extension: the command line of the task that runs after the last render task.
  on_complete?: string;
}

/// Extension: where a gated job's review stands. Approving queues the final pass; rejecting
/// ends the job as "rejected" with the comment kept.
export interface JobApproval {
  state: "pending" | "approved" | "rejected";
  comment?: string;
  /// The API token's name, or "anonymous".
  by?: string;
  at?: string;
}

/// Extension: `POST /api/v3/jobs/openjd`'s body (the fields the dashboard sends): an Open
/// Job Description job template, YAML or JSON, and its job parameters' values by name.
export interface OpenJdSubmission {
  template: string;
  parameters: Record<string, string | number>;
  /// Replaces the template's job name.
  name?: string;
  /// Default 50.
  priority?: number;
  /// Worker tag id.
  worker_tag?: string;
  metadata?: Record<string, string>;
}

/// Extension: what a job limits about its own scheduling.
export interface JobLimits {
  /// Units of each resource pool every running task of the job holds.
  resources?: Record<string, number>;
  /// Only tasks of these types hold the resources (absent: every task).
  resource_task_types?: string[];
  /// The most workers running tasks of the job at the same time.
  max_workers?: number;
}

/// A job another one depends on; `status` is "deleted" (and `name` "") when it is gone.
export interface JobDependency {
  id: string;
  name: string;
  status: string;
}

/// `GET /api/v3/jobs/{id}/dependencies`.
export interface JobDependencies {
  job_id: string;
  status: string;
  /// What it waits for, or why it is on hold.
  activity: string;
  dependencies: JobDependency[];
}

/// A counted resource pool of the farm (licences, say), from `GET /api/v3/resources`.
export interface ResourcePool {
  name: string;
  size: number;
  in_use: number;
}

/// When something is expected to be done; the times are absent without an estimate, and
/// `basis` says why, or what the estimate rests on.
export interface Completion {
  remaining_tasks: number;
  finish_at?: string;
  earliest?: string;
  latest?: string;
  remaining_seconds?: number;
  basis: string;
}

export interface JobCompletion extends Completion {
  job_id: string;
}

/// `GET /api/v3/eta`: every unfinished job, and the whole farm.
export interface CompletionEstimates {
  computed_at: string;
  farm: Completion;
  jobs: JobCompletion[];
}

export interface JobRequirements {
  min_ram_bytes?: number;
  min_gpus?: number;
  required_tags?: string[];
}

export interface TaskWorkerRef {
  id: string;
  name: string;
  address: string;
}

export interface TaskSummary {
  id: string;
  name: string;
  status: string;
  index_in_job: number;
  priority: number;
  task_type: string;
  updated: string;
  steps_completed: number;
  steps_total: number;
  activity: string;
  worker?: TaskWorkerRef;
  progress?: number;
  fault_class?: string;
  /// Extension: the frames of a chunk task, as frame-range text ("11-20", "5,6").
  frames?: string;
}

export interface Task extends TaskSummary {
  job_id: string;
  created: string;
  commands: { name: string; parameters: Record<string, unknown>; total_step_count?: number }[];
  last_touched?: string;
  failed_by_workers: TaskWorkerRef[];
  dependencies: string[];
  /// Extension: the platform the commands were expanded for (asked with `?platform=`).
  expanded_for?: string;
  /// Extension: when a soft-failed task is handed out again, after its retry backoff.
  retry_at?: string;
}

export interface TaskPage {
  tasks: TaskSummary[];
  total: number;
  offset: number;
  status_counts: Counts;
}

export interface BlocklistEntry {
  worker_id: string;
  worker_name: string;
  task_type: string;
  reason: string;
}

export interface WhyAnswer {
  task_id: string;
  status: string;
  summary: string;
  /// `{rule, detail}` per rule that keeps the task waiting.
  blockers: unknown[];
}

export interface WorkerSummary {
  id: string;
  name: string;
  status: string;
  version: string;
  can_restart: boolean;
  slots: number;
  connected: boolean;
  last_seen?: string;
  status_change?: { status: string; is_lazy: boolean };
}

export interface WorkerTask extends TaskSummary {
  job_id: string;
}

export interface Worker extends WorkerSummary {
  ip_address: string;
  platform: string;
  supported_task_types: string[];
  capabilities: Record<string, unknown>;
  task?: WorkerTask;
  tasks: WorkerTask[];
  tags?: { id: string; name: string }[];
}

export interface WorkerTag {
  id: string;
  name: string;
  description?: string;
}

export interface SleepSchedule {
  is_active: boolean;
  days_of_week: string;
  start_time: string;
  end_time: string;
}

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

export interface JobType {
  name: string;
  label: string;
  description?: string;
  settings: SettingSpec[];
  etag: string;
}

export interface FarmSummary {
  workers: Counts;
  workers_busy: number;
  tasks: Counts;
}

/// One message of the event stream: what changed; the page re-reads it.
export interface ChangeEvent {
  kind: "job" | "task" | "worker" | "task-log" | "last-rendered" | "job-deleted" | "resync";
  job_id?: string;
  task_id?: string;
  worker_id?: string;
  /// On `last-rendered` of a numbered frame: the frame (`task_id`: the task that rendered it).
  frame?: number;
}

/// Extension: `GET /api/v3/jobs/last-rendered-images`: one job's newest preview image.
export interface PreviewImage {
  job_id: string;
  /// Path under `/job-files/`.
  image: string;
  /// When the image was last replaced (RFC 3339); the URL's cache-buster.
  updated: string;
}

/// Extension: `GET /api/v3/jobs/{id}/rendered-frames`: the image of one rendered frame.
export interface RenderedFrame {
  frame: number;
  task_id: string;
  image: string;
  updated: string;
}

/// Extension: `GET /api/v3/jobs/{id}/preview-video`: the job's live preview video (MP4,
/// H.264); its n-th frame (from 0) is the n-th frame of the job's range, black until rendered.
export interface PreviewVideoInfo {
  /// Path under `/job-files/`, changing with each new version.
  url: string;
  fps: number;
  first_frame: number;
  frame_count: number;
  rendered_frames: number;
  width: number;
  height: number;
  updated: string;
}

/// `GET /api/v3/registration-secret` (admin): the secret new workers register with.
export interface RegistrationSecret {
  secret: string;
  /// When it was last rotated; absent while the config file's secret applies.
  rotated_at: string | null;
}

/// One state-changing API request, from `GET /api/v3/audit` (admin).
export interface AuditEntry {
  id: number;
  at: string;
  actor: string;
  role: string | null;
  remote: string | null;
  method: string;
  path: string;
  status: number;
}

/// Extension: a notification rule (`/api/v3/notifications/rules`, admin). Rules from the
/// manager's config file come first and are read-only; the webhook secret is write-only.
export interface NotificationRule {
  id: string;
  name: string;
  kind: "webhook" | "slack" | "discord" | "mattermost" | "matrix" | "email";
  events: string[];
  submitter: string | null;
  url: string;
  email_to: string[];
  enabled: boolean;
  secret_set: boolean;
  source: "config" | "api";
  read_only: boolean;
}

/// What the dashboard sends to create or replace a rule; `secret` left out keeps the stored one.
export interface NotificationRuleInput {
  name: string;
  kind: string;
  events: string[];
  submitter?: string;
  url?: string;
  secret?: string;
  email_to?: string[];
  enabled: boolean;
}

/// Extension: one delivery of the notification outbox (the delivery log, newest first).
export interface NotificationDelivery {
  id: string;
  rule_id: string;
  rule_name: string;
  kind: string;
  target: string;
  event: string;
  job_id: string | null;
  worker_id: string | null;
  status: "pending" | "delivered" | "failed";
  attempts: number;
  next_attempt_at: string;
  last_error: string;
  created_at: string;
  updated_at: string;
}
