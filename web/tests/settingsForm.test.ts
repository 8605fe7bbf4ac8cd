import { describe, expect, it } from "vitest";
import type { JobType } from "../src/api/types";
import { formFields, humanize, initialValues, submission, toSettings, validate } from "../src/forms/settingsForm";

// The shapes `GET /api/v3/jobs/types` gives for two built-in job types (abridged).
const echoSleep: JobType = {
  name: "echo-sleep-test",
  label: "Echo Sleep Test",
  etag: "abc123",
  settings: [
    { key: "message", type: "string", required: true, visible: "visible", description: "Text the echo task prints" },
    { key: "sleep_duration_seconds", type: "int32", default: 1, propargs: { min: 0 } },
    { key: "sleep_repeats", type: "int32", default: 1, propargs: { min: 1 } },
  ],
};

const render: JobType = {
  name: "simple-blender-render",
  label: "Simple Blender Render",
  etag: "def456",
  settings: [
    { key: "frames", type: "string", required: true, eval: "f'{C.scene.frame_start}'" },
    { key: "chunk_size", type: "int32", default: 1, propargs: { min: 1 }, visible: "submission" },
    { key: "render_output_root", type: "string", subtype: "dir_path", required: true },
    { key: "add_path_components", type: "int32", required: true, default: 0, propargs: { min: 0, max: 32 } },
    { key: "render_output_path", type: "string", subtype: "file_path", editable: false },
    { key: "fps", type: "float", visible: "hidden" },
    { key: "format", type: "string", choices: ["PNG", "JPEG", "OPEN_EXR"], required: true },
    { key: "has_previews", type: "bool", default: true, label: "Make previews" },
  ],
};

describe("form fields from JOB_TYPE settings", () => {
  it("maps types, subtypes, choices, limits, labels and required marks", () => {
    const fields = formFields(render);
    const byKey = Object.fromEntries(fields.map((f) => [f.key, f]));
    expect(fields.map((f) => f.key)).not.toContain("fps");
    expect(byKey.frames).toMatchObject({ input: "text", required: true, label: "Frames", evalHint: "f'{C.scene.frame_start}'" });
    expect(byKey.chunk_size).toMatchObject({ input: "integer", min: 1, required: false });
    expect(byKey.render_output_root.input).toBe("path");
    expect(byKey.add_path_components).toMatchObject({ min: 0, max: 32 });
    expect(byKey.render_output_path.editable).toBe(false);
    const computed = formFields({ ...render, settings: [{ key: "out", type: "string", editable: false, eval: "x" }] });
    expect(computed[0].editable).toBe(true);
    expect(byKey.format).toMatchObject({ input: "select", choices: ["PNG", "JPEG", "OPEN_EXR"] });
    expect(byKey.has_previews).toMatchObject({ input: "checkbox", label: "Make previews" });
  });

  it("starts from defaults, the first choice of a required select, else empty", () => {
    const values = initialValues(formFields(render));
    expect(values).toMatchObject({
      frames: "",
      chunk_size: "1",
      add_path_components: "0",
      format: "PNG",
      has_previews: true,
      render_output_path: "",
    });
  });

  it("names every problem: missing required, not a number, fractions, limits, bad choice", () => {
    const fields = formFields(render);
    const values = { ...initialValues(fields), chunk_size: "1.5", add_path_components: "40", format: "GIF" };
    expect(validate(fields, values)).toEqual({
      frames: "Frames is required",
      render_output_root: "Render Output Root is required",
      chunk_size: "Chunk Size must be a whole number",
      add_path_components: "Add Path Components must be at most 32",
      format: "Format must be one of PNG, JPEG, OPEN_EXR",
    });
    const echoFields = formFields(echoSleep);
    expect(validate(echoFields, { message: "hi", sleep_duration_seconds: "x", sleep_repeats: "0" })).toEqual({
      sleep_duration_seconds: "Sleep Duration Seconds must be a number",
      sleep_repeats: "Sleep Repeats must be at least 1",
    });
    // A non-editable field is never demanded.
    expect(validate(fields, { ...values, frames: "1-10", render_output_root: "/r", chunk_size: "2", add_path_components: "0", format: "PNG" })).toEqual({});
  });

  it("types the settings as the job type says and leaves out blank optional ones", () => {
    const fields = formFields(render);
    const settings = toSettings(fields, {
      ...initialValues(fields),
      frames: " 1-10 ",
      render_output_root: "/render",
      chunk_size: "5",
      has_previews: false,
    });
    expect(settings).toEqual({
      frames: "1-10",
      render_output_root: "/render",
      chunk_size: 5,
      add_path_components: 0,
      format: "PNG",
      has_previews: false,
    });
  });

  it("builds a Flamenco SubmittedJob with etag, tag and paused start", () => {
    const job = submission({
      name: " Test ",
      jobType: echoSleep,
      priority: 70,
      settings: { message: "hi" },
      workerTag: "tag-id",
      paused: true,
    });
    expect(job).toEqual({
      name: "Test",
      type: "echo-sleep-test",
      type_etag: "abc123",
      priority: 70,
      settings: { message: "hi" },
      metadata: { submitted_from: "dashboard" },
      submitter_platform: "manager",
      worker_tag: "tag-id",
      initial_status: "paused",
    });
    expect(submission({ name: "x", jobType: echoSleep, priority: 50, settings: {} })).not.toHaveProperty("initial_status");
  });

  it("humanizes keys", () => {
    expect(humanize("render_output_root")).toBe("Render Output Root");
  });
});
