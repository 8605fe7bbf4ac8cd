// Job requirements (an extension of the manager): what a job asks of the workers that run
// it. Turned from the Submit page's fields into a submission's `requirements`, and shown
// on the Job page.
import type { JobRequirements } from "../api/types";

const GIB = 1024 ** 3;

export interface RequirementInputs {
  /// Minimum RAM in GiB, as typed (blank: none).
  minRamGib: string;
  /// Minimum number of GPUs, as typed (blank: none).
  minGpus: string;
  /// Names of the worker tags a worker must be in.
  requiredTags: string[];
}

export function emptyRequirementInputs(): RequirementInputs {
  return { minRamGib: "", minGpus: "", requiredTags: [] };
}

/// Problems with the typed values, by input name (`minRamGib`, `minGpus`).
export function requirementErrors(inputs: RequirementInputs): Record<string, string> {
  const errors: Record<string, string> = {};
  // String(): `v-model` on a number input hands over a number once something is typed.
  const ram = String(inputs.minRamGib).trim();
  if (ram && !(Number.isFinite(Number(ram)) && Number(ram) >= 0)) {
    errors.minRamGib = "Minimum RAM must be a number of GiB, 0 or more";
  }
  const gpus = String(inputs.minGpus).trim();
  if (gpus && !(Number.isInteger(Number(gpus)) && Number(gpus) >= 0)) {
    errors.minGpus = "Minimum GPUs must be a whole number, 0 or more";
  }
  return errors;
}

/// The submission's `requirements`, or undefined when nothing is asked.
export function toRequirements(inputs: RequirementInputs): JobRequirements | undefined {
  const requirements: JobRequirements = {};
  const ram = Number(String(inputs.minRamGib).trim() || "0");
  if (ram > 0) requirements.min_ram_bytes = Math.round(ram * GIB);
  const gpus = Number(String(inputs.minGpus).trim() || "0");
  if (gpus > 0) requirements.min_gpus = gpus;
  if (inputs.requiredTags.length) requirements.required_tags = [...inputs.requiredTags];
  return Object.keys(requirements).length ? requirements : undefined;
}

/// "≥ 16 GiB RAM, ≥ 1 GPU, tags gpu, fast"; empty when nothing is asked.
export function describeRequirements(requirements: JobRequirements | undefined): string {
  if (!requirements) return "";
  const parts: string[] = [];
  if (requirements.min_ram_bytes) {
    const gib = requirements.min_ram_bytes / GIB;
    parts.push(`≥ ${Number.isInteger(gib) ? gib : gib.toFixed(1)} GiB RAM`);
  }
  if (requirements.min_gpus) {
    parts.push(`≥ ${requirements.min_gpus} GPU${requirements.min_gpus === 1 ? "" : "s"}`);
  }
  if (requirements.required_tags?.length) {
    parts.push(`tag${requirements.required_tags.length === 1 ? "" : "s"} ${requirements.required_tags.join(", ")}`);
  }
  return parts.join(", ");
}
