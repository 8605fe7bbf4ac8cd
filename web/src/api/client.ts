// A thin fetch wrapper: JSON in and out, and errors that carry the manager's message.
import { ref } from "vue";
import type {
  AuditEntry,
  BlocklistEntry,
  CompletionEstimates,
  Counts,
  FarmSummary,
  ManagerRole,
  Job,
  JobDependencies,
  NotificationDelivery,
  NotificationRule,
  NotificationRuleInput,
  JobType,
  OpenJdSubmission,
  PreviewImage,
  PreviewVideoInfo,
  RegistrationSecret,
  RenderedFrame,
  ResourcePool,
  SleepSchedule,
  Task,
  TaskPage,
  WhyAnswer,
  Worker,
  WorkerSummary,
  WorkerTag,
} from "./types";

/// An answer other than 2xx, with the manager's own message when it sent one.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const TOKEN_KEY = "castanet.api-token";

/// Set when the manager asked for a token (401): the page then offers to enter one.
export const tokenNeeded = ref(false);

export function apiToken(): string {
  return localStorage.getItem(TOKEN_KEY) ?? "";
}

export function setApiToken(token: string) {
  if (token) localStorage.setItem(TOKEN_KEY, token);
  else localStorage.removeItem(TOKEN_KEY);
}

/// Appends the token as a query parameter, for what cannot send headers (SSE, images).
export function withToken(url: string): string {
  const token = apiToken();
  if (!token) return url;
  return `${url}${url.includes("?") ? "&" : "?"}access_token=${encodeURIComponent(token)}`;
}

async function request(method: string, path: string, body?: unknown): Promise<Response> {
  const headers: Record<string, string> = {};
  const token = apiToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!response.ok) {
    if (response.status === 401) tokenNeeded.value = true;
    let message = `${method} ${path}: ${response.status} ${response.statusText}`;
    try {
      const answer = await response.json();
      if (answer && typeof answer.message === "string") message = answer.message;
    } catch {
      // Not JSON: keep the status line.
    }
    throw new ApiError(response.status, message);
  }
  return response;
}

async function json<T>(method: string, path: string, body?: unknown): Promise<T> {
  return (await request(method, path, body)).json() as Promise<T>;
}

/// For answers that may be 204 No Content.
async function maybeJson<T>(path: string): Promise<T | null> {
  const response = await request("GET", path);
  if (response.status === 204) return null;
  return response.json() as Promise<T>;
}

async function send(method: string, path: string, body?: unknown): Promise<void> {
  await request(method, path, body);
}

const q = encodeURIComponent;

export interface JobListQuery {
  status?: string[];
  q?: string;
  order?: string;
  limit: number;
  offset: number;
}

export const api = {
  jobs(query: JobListQuery) {
    const params = new URLSearchParams({
      limit: String(query.limit),
      offset: String(query.offset),
    });
    if (query.status?.length) params.set("status", query.status.join(","));
    if (query.q) params.set("q", query.q);
    if (query.order) params.set("order", query.order);
    return json<{ jobs: Job[]; total: number }>("GET", `/api/v3/jobs?${params}`);
  },
  job: (id: string) => json<Job>("GET", `/api/v3/jobs/${q(id)}`),
  taskCountsOfJobs: (ids: string[]) =>
    json<Record<string, Counts>>("GET", `/api/v3/jobs/task-counts?ids=${ids.map(q).join(",")}`),
  setJobStatus: (id: string, status: string, reason: string) =>
    send("POST", `/api/v3/jobs/${q(id)}/setstatus`, { status, reason }),
  approveJob: (id: string, comment: string, reviewer?: string) =>
    json<Job>("POST", `/api/v3/jobs/${q(id)}/approve`, { comment, reviewer: reviewer || undefined }),
  rejectJob: (id: string, comment: string, reviewer?: string) =>
    json<Job>("POST", `/api/v3/jobs/${q(id)}/reject`, { comment, reviewer: reviewer || undefined }),
  setJobPriority: (id: string, priority: number) =>
    send("POST", `/api/v3/jobs/${q(id)}/setpriority`, { priority }),
  setJobTag: (id: string, tagId: string) =>
    send("POST", `/api/v3/jobs/${q(id)}/settag`, tagId ? { id: tagId } : {}),
  deleteJob: (id: string) => send("DELETE", `/api/v3/jobs/${q(id)}`),
  blocklist: (id: string) => json<BlocklistEntry[]>("GET", `/api/v3/jobs/${q(id)}/blocklist`),
  removeBlocklistEntry: (jobId: string, entry: BlocklistEntry) =>
    send("DELETE", `/api/v3/jobs/${q(jobId)}/blocklist`, [
      { worker_id: entry.worker_id, task_type: entry.task_type },
    ]),
  jobDependencies: (id: string) =>
    json<JobDependencies>("GET", `/api/v3/jobs/${q(id)}/dependencies`),
  /// 409 (with the manager's reason) for a cycle or a job that already started.
  setJobDependencies: (id: string, dependsOn: string[]) =>
    json<Job>("PUT", `/api/v3/jobs/${q(id)}/dependencies`, { depends_on: dependsOn }),
  lastRendered: (id: string) =>
    maybeJson<{ base: string; suffixes: string[] }>(`/api/v3/jobs/${q(id)}/last-rendered`),
  /// Extension: the newest preview image of each of these jobs (those without one left out).
  lastRenderedImages: (ids: string[]) =>
    json<{ images: PreviewImage[] }>("GET", `/api/v3/jobs/last-rendered-images?ids=${ids.map(q).join(",")}`),
  /// Extension: the image of every rendered frame of a job, ordered by frame.
  renderedFrames: (id: string) =>
    json<{ frames: RenderedFrame[] }>("GET", `/api/v3/jobs/${q(id)}/rendered-frames`),
  /// Extension: the job's live preview video; null while there is none (503 when the
  /// manager makes none, with its reason).
  previewVideo: (id: string) =>
    maybeJson<PreviewVideoInfo>(`/api/v3/jobs/${q(id)}/preview-video`),
  taskPage(jobId: string, offset: number, limit: number, statuses: string[]) {
    const params = new URLSearchParams({ offset: String(offset), limit: String(limit) });
    if (statuses.length) params.set("status", statuses.join(","));
    return json<TaskPage>("GET", `/api/v3/jobs/${q(jobId)}/tasks/page?${params}`);
  },
  /// `platform`: the commands with their {variables} expanded as a worker there gets them.
  task: (id: string, platform?: string) =>
    json<Task>("GET", `/api/v3/tasks/${q(id)}${platform ? `?platform=${q(platform)}` : ""}`),
  setTaskStatus: (id: string, status: string, reason: string) =>
    send("POST", `/api/v3/tasks/${q(id)}/setstatus`, { status, reason }),
  why: (id: string) => json<WhyAnswer>("GET", `/api/v3/tasks/${q(id)}/why`),
  logInfo: (id: string) =>
    maybeJson<{ url: string; size: number }>(`/api/v3/tasks/${q(id)}/log`),
  async logTail(id: string): Promise<string> {
    const response = await request("GET", `/api/v3/tasks/${q(id)}/logtail`);
    return response.status === 204 ? "" : response.text();
  },
  async wholeLog(url: string): Promise<string> {
    return (await request("GET", url)).text();
  },
  workers: () => json<{ workers: WorkerSummary[] }>("GET", "/api/v3/worker-mgt/workers"),
  worker: (id: string) => json<Worker>("GET", `/api/v3/worker-mgt/workers/${q(id)}`),
  setWorkerStatus: (id: string, status: string, isLazy: boolean) =>
    send("POST", `/api/v3/worker-mgt/workers/${q(id)}/setstatus`, { status, is_lazy: isLazy }),
  clearWorkerStatus: (id: string) =>
    send("DELETE", `/api/v3/worker-mgt/workers/${q(id)}/setstatus`),
  setWorkerTags: (id: string, tagIds: string[]) =>
    send("POST", `/api/v3/worker-mgt/workers/${q(id)}/settags`, { tag_ids: tagIds }),
  deleteWorker: (id: string) => send("DELETE", `/api/v3/worker-mgt/workers/${q(id)}`),
  sleepSchedule: (id: string) =>
    maybeJson<SleepSchedule>(`/api/v3/worker-mgt/workers/${q(id)}/sleep-schedule`),
  setSleepSchedule: (id: string, schedule: SleepSchedule) =>
    send("POST", `/api/v3/worker-mgt/workers/${q(id)}/sleep-schedule`, schedule),
  tags: () => json<{ tags: WorkerTag[] }>("GET", "/api/v3/worker-mgt/tags"),
  createTag: (name: string, description: string) =>
    json<WorkerTag>("POST", "/api/v3/worker-mgt/tags", { name, description }),
  updateTag: (id: string, tag: WorkerTag) =>
    send("PUT", `/api/v3/worker-mgt/tag/${q(id)}`, {
      name: tag.name,
      description: tag.description ?? "",
    }),
  deleteTag: (id: string) => send("DELETE", `/api/v3/worker-mgt/tag/${q(id)}`),
  jobTypes: () => json<{ job_types: JobType[] }>("GET", "/api/v3/jobs/types"),
  checkJob: (job: unknown) => send("POST", "/api/v3/jobs/check", job),
  submitJob: (job: unknown) => json<Job>("POST", "/api/v3/jobs", job),
  /// Extension: an Open Job Description template; 400 with the manager's message naming
  /// what it refuses (a feature, a parameter value).
  submitOpenJd: (submission: OpenJdSubmission) => json<Job>("POST", "/api/v3/jobs/openjd", submission),
  resourcePools: () => json<{ pools: ResourcePool[] }>("GET", "/api/v3/resources"),
  eta: () => json<CompletionEstimates>("GET", "/api/v3/eta"),
  farmSummary: () => json<FarmSummary>("GET", "/api/v3/farm/summary"),
  /// Extension: whether this manager is the active one (managers sharing PostgreSQL).
  managerRole: () => json<ManagerRole>("GET", "/api/v3/manager"),
  /// Extension: notification rules and the delivery log (admin operations).
  notificationRules: () =>
    json<{ rules: NotificationRule[] }>("GET", "/api/v3/notifications/rules"),
  createNotificationRule: (rule: NotificationRuleInput) =>
    json<NotificationRule>("POST", "/api/v3/notifications/rules", rule),
  updateNotificationRule: (id: string, rule: NotificationRuleInput) =>
    json<NotificationRule>("PUT", `/api/v3/notifications/rules/${q(id)}`, rule),
  deleteNotificationRule: (id: string) => send("DELETE", `/api/v3/notifications/rules/${q(id)}`),
  testNotificationRule: (id: string) =>
    json<{ delivery_id: string }>("POST", `/api/v3/notifications/rules/${q(id)}/test`),
  notificationDeliveries(status: string, limit: number) {
    const params = new URLSearchParams({ limit: String(limit) });
    if (status) params.set("status", status);
    return json<{ deliveries: NotificationDelivery[] }>("GET", `/api/v3/notifications/deliveries?${params}`);
  },
  registrationSecret: () => json<RegistrationSecret>("GET", "/api/v3/registration-secret"),
  rotateRegistrationSecret: () =>
    json<RegistrationSecret>("POST", "/api/v3/registration-secret/rotate"),
  audit(limit: number, before?: number) {
    const params = new URLSearchParams({ limit: String(limit) });
    if (before !== undefined) params.set("before", String(before));
    return json<{ entries: AuditEntry[] }>("GET", `/api/v3/audit?${params}`);
  },
};
