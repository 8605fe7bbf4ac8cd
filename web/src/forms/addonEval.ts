// What the Blender add-on computes from the open scene for settings with an `eval`, done here
// from the form instead: the render output path from the output root, the .blend file's
// folders and the job name; the image file extension from the output format; and, for what
// only the scene knows, Blender's own defaults (24 fps, PNG, scene "Scene", no previews).
import type { SettingSpec } from "../api/types";

/// Blender's `image_settings.file_format` → the `render.file_extension` it writes.
const EXTENSIONS: Record<string, string> = {
  BMP: ".bmp",
  IRIS: ".rgb",
  PNG: ".png",
  JPEG: ".jpg",
  JPEG2000: ".jp2",
  TARGA: ".tga",
  TARGA_RAW: ".tga",
  CINEON: ".cin",
  DPX: ".dpx",
  OPEN_EXR: ".exr",
  OPEN_EXR_MULTILAYER: ".exr",
  EXR: ".exr",
  MULTILAYER: ".exr",
  HDR: ".hdr",
  TIFF: ".tif",
  WEBP: ".webp",
};

/// How a setting's value is found when there is no scene.
export type EvalKind =
  | "output-path" // from render_output_root, add_path_components, blendfile, job name
  | "extension" // from the format setting
  | "default" // Blender's default, editable
  | "typed"; // only the user knows (frame range, blend file)

export function evalKind(spec: SettingSpec): EvalKind | undefined {
  const expression = spec.eval;
  if (!expression) return undefined;
  if (expression.includes("last_n_dir_parts")) return "output-path";
  if (expression.includes("render.file_extension")) return "extension";
  if (sceneDefault(expression) !== undefined) return "default";
  return "typed";
}

function sceneDefault(expression: string): string | boolean | undefined {
  if (expression.includes("render.fps")) return "24";
  if (expression.includes("image_settings.file_format")) return "PNG";
  if (expression.includes("use_preview")) return false;
  if (expression.includes("scene.name")) return "Scene";
  return undefined;
}

/// The starting value of a setting the add-on would compute, when a default stands in.
export function evalDefault(spec: SettingSpec): string | boolean | undefined {
  return spec.eval ? sceneDefault(spec.eval) : undefined;
}

export function extensionOf(format: string): string {
  return EXTENSIONS[format.trim().toUpperCase()] ?? "";
}

/// The last `count` folder names of a file's path (the add-on's `last_n_dir_parts`).
export function lastDirParts(file: string, count: number): string[] {
  if (!(count > 0)) return [];
  const folders = file.split(/[\\/]+/).filter(Boolean).slice(0, -1);
  // A Windows drive ("C:") is not a folder name.
  const names = folders.filter((part, index) => !(index === 0 && /^[A-Za-z]:$/.test(part)));
  return names.slice(-count);
}

export interface OutputPathInput {
  root: string;
  addPathComponents: number;
  blendfile: string;
  jobName: string;
  /// The setting's `eval`: which parts follow the job name ('{timestamp}', '######').
  expression: string;
}

/// `<root>/<last N folders of the .blend file>/<job name>/{timestamp}/######`, with the parts
/// after the job name as the job type's expression has them; empty until a root is given.
export function outputPath(input: OutputPathInput): string {
  const root = input.root.trim();
  if (!root) return "";
  const windows = root.includes("\\") && !root.includes("/");
  const separator = windows ? "\\" : "/";
  // A job name with a separator would make folders of its own.
  const name = input.jobName.trim().replace(/[\\/]+/g, "-") || "job";
  // The quoted parts of the expression follow the job name: '{timestamp}', '######'.
  const tail = [...input.expression.matchAll(/'([^']*)'/g)].map((match) => match[1]).filter(Boolean);
  const parts = [...lastDirParts(input.blendfile, input.addPathComponents), name, ...tail];
  return [root.replace(/[\\/]+$/, ""), ...parts].join(separator);
}
