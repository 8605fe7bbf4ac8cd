// Job scheduling (extensions of the manager): the jobs a job waits for, the resource pools
// its tasks hold, its worker limit, the preview-first order and the target task duration of
// adaptive chunking. Turned from the Submit page's fields into a submission's `depends_on`,
// `limits`, `preview_first_every` and `target_task_minutes`, and described on the Job page.
import type { Job, JobLimits, ResourcePool } from "../api/types";
import { onCompleteError } from "./onComplete";

export interface SchedulingInputs {
  /// Ids of the jobs to wait for, as typed (comma or space separated).
  dependsOn: string;
  /// Units of each resource pool a task holds, by pool name, as typed (blank: none).
  pools: Record<string, string>;
  /// Task types that hold the resources, as typed (blank: every task of the job).
  resourceTaskTypes: string;
  /// The most workers at once, as typed (blank: no limit).
  maxWorkers: string;
  /// Hand out every Nth task first, as typed (blank: tasks in order).
  previewEvery: string;
  /// Adaptive chunking: minutes a task should take, as typed (blank: chunks as authored).
  targetMinutes: string;
  /// A command line run after the job's last render task, as typed (blank: none).
  onComplete?: string;
}

/// What a submission gets from the inputs; empty fields are left out.
export interface SchedulingFields {
  depends_on?: string[];
  limits?: JobLimits;
  preview_first_every?: number;
  target_task_minutes?: number;
  on_complete?: string;
}

/// The longest target task duration the manager takes: a day.
export const MAX_TARGET_TASK_MINUTES = 1440;

/// An input's value as trimmed text: `v-model` on a number input hands over a number.
function typed(value: string | number | undefined): string {
  return String(value ?? "").trim();
}

export function emptySchedulingInputs(): SchedulingInputs {
  return { dependsOn: "", pools: {}, resourceTaskTypes: "", maxWorkers: "", previewEvery: "", targetMinutes: "" };
}

/// The separate words of a comma or space separated list, without duplicates.
export function splitList(text: string): string[] {
  return [...new Set(typed(text).split(/[\s,]+/).filter(Boolean))];
}

// The manager takes job ids as UUIDs (and spells them in lower case).
const UUID = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/// Job ids typed into a list, lower case, without duplicates.
export function parseJobIds(text: string): string[] {
  return [...new Set(splitList(text).map((id) => id.toLowerCase()))];
}

/// Why typed job ids cannot be sent (undefined when they can). `self`: the job whose
/// dependencies they are, which cannot wait for itself.
export function jobIdsError(text: string, self?: string): string | undefined {
  const ids = parseJobIds(text);
  const bad = ids.filter((id) => !UUID.test(id));
  if (bad.length) {
    return `Not a job id: ${bad.join(", ")} (job ids look like 1b4e28ba-2fa1-11d2-883f-0016d3cca427)`;
  }
  if (self && ids.includes(self.toLowerCase())) return "A job cannot depend on itself";
  return undefined;
}

function isWhole(text: string, min: number): boolean {
  const number = Number(text);
  return Number.isInteger(number) && number >= min;
}

/// Problems with the typed values, by input name (`dependsOn`, `pool:<name>`,
/// `resourceTaskTypes`, `maxWorkers`, `previewEvery`, `targetMinutes`). `pools`: the farm's pools, to catch
/// a task asking more units than its pool holds (it could never run).
export function schedulingErrors(
  inputs: SchedulingInputs,
  pools: ResourcePool[] = [],
): Record<string, string> {
  const errors: Record<string, string> = {};
  const idsError = jobIdsError(inputs.dependsOn);
  if (idsError) errors.dependsOn = idsError;
  let holdsAny = false;
  for (const [name, value] of Object.entries(inputs.pools)) {
    const text = typed(value);
    if (!text) continue;
    const size = pools.find((pool) => pool.name === name)?.size;
    if (!isWhole(text, 0)) {
      errors[`pool:${name}`] = `Units of ${name} must be a whole number, 0 or more`;
    } else if (size !== undefined && Number(text) > size) {
      errors[`pool:${name}`] = `The ${name} pool holds only ${size}: no task could ever run`;
    } else if (Number(text) > 0) {
      holdsAny = true;
    }
  }
  // A wrong pool value already has its message; the types only need one without any.
  const poolErrors = Object.keys(errors).some((key) => key.startsWith("pool:"));
  if (splitList(inputs.resourceTaskTypes).length && !holdsAny && !poolErrors) {
    errors.resourceTaskTypes = "Only task types applies to resources: give a pool some units per task";
  }
  const max = typed(inputs.maxWorkers);
  if (max && !isWhole(max, 1)) {
    errors.maxWorkers = "Max workers must be a whole number, 1 or more (blank: no limit)";
  }
  const every = typed(inputs.previewEvery);
  if (every && !isWhole(every, 2)) {
    errors.previewEvery = "Preview first must be a whole number, 2 or more (blank: in order)";
  }
  const target = typed(inputs.targetMinutes);
  if (target) {
    const minutes = Number(target);
    if (!Number.isFinite(minutes) || minutes <= 0 || minutes > MAX_TARGET_TASK_MINUTES) {
      errors.targetMinutes = `Target task duration must be more than 0 and at most ${MAX_TARGET_TASK_MINUTES} minutes (blank: fixed chunks)`;
    } else if (every) {
      // The manager refuses the pair: regrouped chunks run in frame order.
      errors.targetMinutes = "Target task duration cannot be combined with preview first: regrouped chunks run in frame order";
    }
  }
  const onComplete = onCompleteError(inputs.onComplete ?? "");
  if (onComplete) errors.onComplete = onComplete;
  return errors;
}

/// The submission's scheduling fields, leaving out what is blank (or 0 units).
export function toScheduling(inputs: SchedulingInputs): SchedulingFields {
  const fields: SchedulingFields = {};
  const ids = parseJobIds(inputs.dependsOn);
  if (ids.length) fields.depends_on = ids;
  const limits: JobLimits = {};
  const resources: Record<string, number> = {};
  for (const [name, value] of Object.entries(inputs.pools)) {
    const units = Number(typed(value) || "0");
    if (units > 0) resources[name] = units;
  }
  if (Object.keys(resources).length) {
    limits.resources = resources;
    const types = splitList(inputs.resourceTaskTypes);
    if (types.length) limits.resource_task_types = types;
  }
  const max = typed(inputs.maxWorkers);
  if (max) limits.max_workers = Number(max);
  if (Object.keys(limits).length) fields.limits = limits;
  const every = typed(inputs.previewEvery);
  if (every) fields.preview_first_every = Number(every);
  const target = typed(inputs.targetMinutes);
  if (target) fields.target_task_minutes = Number(target);
  const onComplete = typed(inputs.onComplete);
  if (onComplete) fields.on_complete = onComplete;
  return fields;
}

/// 1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, 21st.
export function ordinal(n: number): string {
  const tens = n % 100;
  if (tens >= 11 && tens <= 13) return `${n}th`;
  return `${n}${{ 1: "st", 2: "nd", 3: "rd" }[n % 10] ?? "th"}`;
}

/// "licence × 1 per task (blender tasks only), at most 2 workers, preview first every
/// 10th"; empty when the job limits nothing.
export function describeScheduling(job: Pick<Job, "limits" | "preview_first_every">): string {
  const parts: string[] = [];
  const limits = job.limits ?? {};
  const resources = Object.entries(limits.resources ?? {});
  if (resources.length) {
    let text = `${resources.map(([name, units]) => `${name} × ${units}`).join(", ")} per task`;
    if (limits.resource_task_types?.length) {
      text += ` (${limits.resource_task_types.join(", ")} tasks only)`;
    }
    parts.push(text);
  }
  if (limits.max_workers) {
    parts.push(`at most ${limits.max_workers} worker${limits.max_workers === 1 ? "" : "s"}`);
  }
  if (job.preview_first_every) parts.push(`preview first every ${ordinal(job.preview_first_every)}`);
  return parts.join(", ");
}

/// "Adaptive chunks, target 5 min" ("…, target 0.5 min (30 s)"); empty when the job's chunks stay as authored.
export function describeChunking(job: Pick<Job, "target_task_minutes">): string {
  const minutes = job.target_task_minutes;
  if (!minutes) return "";
  // The manager stores seconds: 2.5 min comes back as 2.5, 1/3 min as 0.3333….
  const shown = Number.isInteger(minutes) ? String(minutes) : String(Number(minutes.toFixed(2)));
  // Under a minute the seconds say more: 0.05 min (3 s).
  const seconds = minutes < 1 ? ` (${Math.round(minutes * 60)} s)` : "";
  return `Adaptive chunks, target ${shown} min${seconds}`;
}

/// Job statuses in which the manager lets the dependencies change.
export const DEPENDENCIES_EDITABLE = ["waiting-for-dependencies", "queued", "paused"];
