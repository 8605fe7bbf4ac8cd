// Open Job Description templates (an extension of the manager): the Submit page's OpenJD
// form — a pasted or loaded YAML/JSON job template, job parameter values as name = value
// rows, and the job's name, priority and worker tag — turned into the body of
// `POST /api/v3/jobs/openjd`. The manager expands the template and names what it refuses.
import type { OpenJdSubmission } from "../api/types";

/// The job type (and Submit page URL, `/submit/openjd`) of jobs made from OpenJD templates.
export const OPENJD_JOB_TYPE = "openjd";

export interface ParameterRow {
  name: string;
  value: string;
}

export interface OpenJdInputs {
  /// The job template as YAML or JSON text.
  template: string;
  /// Job parameter values as typed; rows with neither name nor value are left out.
  parameters: ParameterRow[];
  /// Replaces the template's job name (blank: the template's).
  name: string;
  /// 0–100 as typed (blank: the manager's default, 50).
  priority: string | number;
  /// Worker tag id (blank: any worker).
  workerTag: string;
}

export function emptyParameterRow(): ParameterRow {
  return { name: "", value: "" };
}

export function emptyOpenJdInputs(): OpenJdInputs {
  return { template: "", parameters: [emptyParameterRow()], name: "", priority: "", workerTag: "" };
}

// OpenJD identifiers: a letter or underscore, then letters, digits and underscores.
const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function typed(value: string | number | undefined): string {
  return String(value ?? "").trim();
}

/// The rows that say something: a name, a value, or both.
function filledRows(rows: ParameterRow[]): ParameterRow[] {
  return rows.filter((row) => typed(row.name) || typed(row.value));
}

/// Problems with the inputs, by input name (`template`, `parameters`, `priority`). The
/// manager checks the template and the values against it; this only catches what cannot be
/// sent as meant.
export function openJdErrors(inputs: OpenJdInputs): Record<string, string> {
  const errors: Record<string, string> = {};
  if (!inputs.template.trim()) errors.template = "Paste a job template or load it from a file";
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const row of filledRows(inputs.parameters)) {
    const name = typed(row.name);
    if (!name) {
      problems.push(`the value "${typed(row.value)}" has no parameter name`);
    } else if (!IDENTIFIER.test(name)) {
      problems.push(`"${name}" is not a parameter name (letters, digits and _, not starting with a digit)`);
    } else if (seen.has(name)) {
      problems.push(`${name} is given twice`);
    }
    seen.add(name);
  }
  if (problems.length) errors.parameters = `Parameters: ${problems.join("; ")}`;
  const priority = typed(inputs.priority);
  if (priority) {
    const number = Number(priority);
    if (!Number.isInteger(number) || number < 0 || number > 100) {
      errors.priority = "Priority must be a whole number from 0 to 100 (blank: 50)";
    }
  }
  return errors;
}

/// The submission's body. Values go as typed text: the manager reads INT and FLOAT values
/// from their text, and a blank value is a blank STRING or PATH.
export function toOpenJdSubmission(inputs: OpenJdInputs): OpenJdSubmission {
  const parameters: Record<string, string> = {};
  for (const row of filledRows(inputs.parameters)) parameters[typed(row.name)] = typed(row.value);
  const body: OpenJdSubmission = {
    template: inputs.template,
    parameters,
    metadata: { submitted_from: "dashboard" },
  };
  if (typed(inputs.name)) body.name = typed(inputs.name);
  if (typed(inputs.priority)) body.priority = Number(typed(inputs.priority));
  if (inputs.workerTag) body.worker_tag = inputs.workerTag;
  return body;
}
