import { describe, expect, it } from "vitest";
import {
  describeRequirements,
  emptyRequirementInputs,
  requirementErrors,
  toRequirements,
} from "../src/forms/requirements";
import { submission } from "../src/forms/settingsForm";

const GIB = 1024 ** 3;

describe("job requirements", () => {
  it("asks nothing when nothing is filled in", () => {
    expect(toRequirements(emptyRequirementInputs())).toBeUndefined();
    expect(toRequirements({ minRamGib: "0", minGpus: "0", requiredTags: [] })).toBeUndefined();
  });

  it("turns the inputs into the submission's requirements", () => {
    const requirements = toRequirements({ minRamGib: "1.5", minGpus: "2", requiredTags: ["gpu"] });
    expect(requirements).toEqual({ min_ram_bytes: 1.5 * GIB, min_gpus: 2, required_tags: ["gpu"] });
    const job = submission({ name: "x", jobType: { name: "t", label: "T", etag: "e", settings: [] }, priority: 50, settings: {}, requirements });
    expect(job.requirements).toEqual(requirements);
  });

  it("names what was typed wrong", () => {
    const errors = requirementErrors({ minRamGib: "lots", minGpus: "1.5", requiredTags: [] });
    expect(Object.keys(errors).sort()).toEqual(["minGpus", "minRamGib"]);
    expect(requirementErrors({ minRamGib: "8", minGpus: "1", requiredTags: [] })).toEqual({});
  });

  it("describes what a job asks", () => {
    expect(describeRequirements({ min_ram_bytes: 16 * GIB, min_gpus: 1, required_tags: ["gpu", "fast"] })).toBe(
      "≥ 16 GiB RAM, ≥ 1 GPU, tags gpu, fast",
    );
    expect(describeRequirements({ min_gpus: 2 })).toBe("≥ 2 GPUs");
    expect(describeRequirements(undefined)).toBe("");
  });
});
