// Generates the Submit page's form from a job type's JOB_TYPE settings, checks what was
// entered, and turns it into the settings of a submission (typed as the job type says).
import type { JobRequirements, JobType, SettingSpec } from "../api/types";
import { type EvalKind, evalDefault, evalKind, extensionOf, outputPath } from "./addonEval";
import type { SchedulingFields } from "./scheduling";

export type FieldInput = "text" | "path" | "integer" | "number" | "checkbox" | "select";

export interface FormField {
  key: string;
  label: string;
  input: FieldInput;
  required: boolean;
  editable: boolean;
  description: string;
  choices: string[];
  min?: number;
  max?: number;
  /// Computed by the Blender add-on from the scene; shown as a hint.
  evalHint?: string;
  /// How the form stands in for the add-on's computation (`eval` settings only).
  evalKind?: EvalKind;
  spec: SettingSpec;
}

/// Settings the form computes from other fields, as the add-on would; shown read-only.
function isDerived(kind: EvalKind | undefined): boolean {
  return kind === "output-path" || kind === "extension";
}

export type FormValue = string | boolean;
export type FormValues = Record<string, FormValue>;

/// "render_output_root" → "Render Output Root".
export function humanize(key: string): string {
  return key
    .split(/[_\s]+/)
    .filter(Boolean)
    .map((word) => word[0].toUpperCase() + word.slice(1))
    .join(" ");
}

function inputOf(spec: SettingSpec): FieldInput {
  if (spec.choices?.length) return "select";
  switch (spec.type) {
    case "bool":
      return "checkbox";
    case "int32":
      return "integer";
    case "float":
      return "number";
    default:
      return spec.subtype ? "path" : "text";
  }
}

function numberArg(spec: SettingSpec, name: string): number | undefined {
  const value = spec.propargs?.[name];
  return typeof value === "number" ? value : undefined;
}

/// The fields of the form: every setting except hidden ones, and hidden ones too when the
/// add-on would compute them (the job type needs them; here the form has to).
export function formFields(jobType: JobType): FormField[] {
  return jobType.settings
    .filter((spec) => spec.visible !== "hidden" || spec.eval !== undefined)
    .map((spec) => {
      const kind = evalKind(spec);
      return {
        key: spec.key,
        label: spec.label ?? humanize(spec.key),
        input: inputOf(spec),
        // The job type's script cannot do without the output path.
        required: spec.required === true || kind === "output-path",
        // Other computed values (frame range, blend file, fps…) are typed in: no scene here.
        editable: !isDerived(kind) && (spec.editable !== false || spec.eval !== undefined),
        description: spec.description ?? "",
        choices: spec.choices ?? [],
        min: numberArg(spec, "min"),
        max: numberArg(spec, "max"),
        evalHint: spec.eval,
        evalKind: kind,
        spec,
      };
    });
}

function text(values: FormValues, key: string): string {
  // v-model on a number input stores a number, whatever FormValue says.
  const value: unknown = values[key];
  return typeof value === "string" || typeof value === "number" ? String(value) : "";
}

/// `values` with the derived settings computed from the other fields and the job name.
export function withComputed(fields: FormField[], values: FormValues, jobName: string): FormValues {
  const next = { ...values };
  for (const field of fields) {
    if (field.evalKind === "output-path") {
      next[field.key] = outputPath({
        root: text(values, "render_output_root"),
        addPathComponents: Number.parseInt(text(values, "add_path_components") || "0", 10),
        blendfile: text(values, "blendfile"),
        jobName,
        expression: field.evalHint ?? "",
      });
    } else if (field.evalKind === "extension") {
      next[field.key] = extensionOf(text(values, "format"));
    }
  }
  return next;
}

/// Starting values: each setting's default, else empty (or unticked).
export function initialValues(fields: FormField[]): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    const preset = field.spec.default ?? evalDefault(field.spec);
    if (field.input === "checkbox") values[field.key] = preset === true;
    else if (preset !== undefined && preset !== null) values[field.key] = String(preset);
    else if (field.input === "select" && field.required) values[field.key] = field.choices[0] ?? "";
    else values[field.key] = "";
  }
  return values;
}

function isBlank(value: FormValue | undefined): boolean {
  return value === undefined || (typeof value === "string" && value.trim() === "");
}

/// Problems with the entered values, by field key; empty when the form can be submitted.
export function validate(fields: FormField[], values: FormValues): Record<string, string> {
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const value = values[field.key];
    if (field.input === "checkbox") continue;
    if (isBlank(value)) {
      if (field.required && field.editable) errors[field.key] = `${field.label} is required`;
      else if (field.required && field.evalKind === "output-path") {
        errors[field.key] = `${field.label} is computed from Render Output Root: fill that in`;
      } else if (field.required && field.evalKind === "extension") {
        errors[field.key] = `${field.label} is computed from Format: give a Blender image format such as PNG`;
      }
      continue;
    }
    const text = String(value).trim();
    if (field.input === "integer" || field.input === "number") {
      const number = Number(text);
      if (!Number.isFinite(number)) {
        errors[field.key] = `${field.label} must be a number`;
      } else if (field.input === "integer" && !Number.isInteger(number)) {
        errors[field.key] = `${field.label} must be a whole number`;
      } else if (field.min !== undefined && number < field.min) {
        errors[field.key] = `${field.label} must be at least ${field.min}`;
      } else if (field.max !== undefined && number > field.max) {
        errors[field.key] = `${field.label} must be at most ${field.max}`;
      }
    } else if (field.input === "select" && !field.choices.includes(text)) {
      errors[field.key] = `${field.label} must be one of ${field.choices.join(", ")}`;
    }
  }
  return errors;
}

/// The settings object of a submission: typed values; blank optional fields left out.
export function toSettings(fields: FormField[], values: FormValues): Record<string, unknown> {
  const settings: Record<string, unknown> = {};
  for (const field of fields) {
    const value = values[field.key];
    if (field.input === "checkbox") {
      settings[field.key] = value === true;
      continue;
    }
    if (isBlank(value)) continue;
    const text = String(value).trim();
    if (field.input === "integer") settings[field.key] = Number.parseInt(text, 10);
    else if (field.input === "number") settings[field.key] = Number(text);
    else settings[field.key] = text;
  }
  return settings;
}

export interface SubmissionInput {
  name: string;
  jobType: JobType;
  priority: number;
  settings: Record<string, unknown>;
  workerTag?: string;
  paused?: boolean;
  requirements?: JobRequirements;
  /// Extensions: dependencies, limits, preview-first order (already without blanks).
  scheduling?: SchedulingFields;
}

/// A Flamenco `SubmittedJob`.
export function submission(input: SubmissionInput) {
  const job: Record<string, unknown> = {
    name: input.name.trim(),
    type: input.jobType.name,
    type_etag: input.jobType.etag,
    priority: input.priority,
    settings: input.settings,
    metadata: { submitted_from: "dashboard" },
    submitter_platform: "manager",
  };
  if (input.workerTag) job.worker_tag = input.workerTag;
  if (input.paused) job.initial_status = "paused";
  if (input.requirements) job.requirements = input.requirements;
  if (input.scheduling) Object.assign(job, input.scheduling);
  return job;
}
