import { describe, expect, it } from "vitest";
import type { JobType } from "../src/api/types";
import { extensionOf, lastDirParts, outputPath } from "../src/forms/addonEval";
import { formFields, initialValues, toSettings, validate, withComputed } from "../src/forms/settingsForm";

const OUTPUT_EVAL =
  "str(Path(abspath(settings.render_output_root), last_n_dir_parts(settings.add_path_components), jobname, '{timestamp}', '######'))";

// The built-in simple-blender-render's settings as `GET /api/v3/jobs/types` gives them (abridged).
const render: JobType = {
  name: "simple-blender-render",
  label: "Simple Blender Render",
  etag: "e",
  settings: [
    { key: "frames", type: "string", required: true, eval: "f'{C.scene.frame_start}-{C.scene.frame_end}'" },
    { key: "render_output_root", type: "string", subtype: "dir_path", required: true, visible: "submission" },
    { key: "add_path_components", type: "int32", required: true, default: 0, visible: "submission" },
    { key: "render_output_path", type: "string", subtype: "file_path", editable: false, eval: OUTPUT_EVAL },
    { key: "blendfile", type: "string", required: true, eval: "bpy.data.filepath", visible: "web" },
    { key: "fps", type: "float", eval: "C.scene.render.fps / C.scene.render.fps_base", visible: "hidden" },
    { key: "format", type: "string", required: true, eval: "C.scene.render.image_settings.file_format", visible: "web" },
    { key: "image_file_extension", type: "string", required: true, eval: "C.scene.render.file_extension", visible: "hidden" },
    { key: "has_previews", type: "bool", eval: "C.scene.render.image_settings.use_preview", visible: "hidden" },
    { key: "scene", type: "string", required: true, eval: "C.scene.name", visible: "web" },
  ],
};

describe("what the Blender add-on computes", () => {
  it("builds the output path from root, blend file folders and job name", () => {
    const input = { root: "/render/", addPathComponents: 2, blendfile: "/projects/film/sh010/anim.blend", jobName: "Shot 10", expression: OUTPUT_EVAL };
    expect(outputPath(input)).toBe("/render/film/sh010/Shot 10/{timestamp}/######");
    expect(outputPath({ ...input, addPathComponents: 0, jobName: "a/b" })).toBe("/render/a-b/{timestamp}/######");
    expect(outputPath({ ...input, root: "" })).toBe("");
    expect(outputPath({ ...input, root: "R:\\out", blendfile: "C:\\p\\film\\x.blend", addPathComponents: 5 })).toBe(
      "R:\\out\\p\\film\\Shot 10\\{timestamp}\\######",
    );
    expect(lastDirParts("/a/b/c.blend", 1)).toEqual(["b"]);
  });

  it("knows the extension Blender writes for each image format", () => {
    expect(extensionOf("PNG")).toBe(".png");
    expect(extensionOf("OPEN_EXR_MULTILAYER")).toBe(".exr");
    expect(extensionOf("JPEG")).toBe(".jpg");
    expect(extensionOf("FFMPEG")).toBe("");
  });

  it("fills in every setting the job type needs, hidden ones included", () => {
    const fields = formFields(render);
    const byKey = Object.fromEntries(fields.map((f) => [f.key, f]));
    expect(Object.keys(byKey)).toEqual(expect.arrayContaining(["fps", "image_file_extension", "has_previews"]));
    expect(byKey.render_output_path).toMatchObject({ editable: false, required: true });
    expect(byKey.image_file_extension.editable).toBe(false);
    expect(byKey.fps.editable).toBe(true);
    let values = initialValues(fields);
    expect(values).toMatchObject({ fps: "24", format: "PNG", scene: "Scene", has_previews: false });
    values = withComputed(fields, values, "my job");
    expect(validate(fields, values)).toMatchObject({
      render_output_path: expect.stringContaining("Render Output Root"),
      frames: "Frames is required",
    });
    values = { ...values, frames: "1-10", render_output_root: "/render", blendfile: "/p/scene.blend" };
    values = withComputed(fields, values, "my job");
    expect(validate(fields, values)).toEqual({});
    // A number input's v-model gives a number.
    const numbered = withComputed(fields, { ...values, add_path_components: 1 as unknown as string }, "my job");
    expect(numbered.render_output_path).toBe("/render/p/my job/{timestamp}/######");
    expect(toSettings(fields, values)).toEqual({
      frames: "1-10",
      render_output_root: "/render",
      add_path_components: 0,
      render_output_path: "/render/my job/{timestamp}/######",
      blendfile: "/p/scene.blend",
      fps: 24,
      format: "PNG",
      image_file_extension: ".png",
      has_previews: false,
      scene: "Scene",
    });
    const unknown = withComputed(fields, { ...values, format: "GIF" }, "my job");
    expect(validate(fields, unknown).image_file_extension).toContain("Format");
  });
});
