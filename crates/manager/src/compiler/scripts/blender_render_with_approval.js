// Blender Render with Approval: renders a low-quality preview pass (every Nth frame, at a reduced
// resolution and sample count, into `<render output folder>/preview/`), then waits in
// "awaiting-approval". Approving it runs compileApproved below: the final pass renders every frame
// at full quality into the normal output. Rejecting it ends the job, with the reviewer's comment.

const JOB_TYPE = {
  label: "Blender Render with Approval",
  description:
    "Render a quick preview of every Nth frame, wait for approval, then render the final frames",
  settings: [
    {
      key: "frames",
      type: "string",
      required: true,
      eval: "f'{C.scene.frame_start}-{C.scene.frame_end}'",
      evalInfo: { showLinkButton: true, description: "Scene frame range" },
      description: "Frame range to render, e.g. '47', '1-30', '3, 5-10, 47-327'",
    },
    {
      key: "chunk_size",
      type: "int32",
      default: 1,
      propargs: { min: 1 },
      visible: "submission",
      description: "Number of frames to render in one Blender render task",
    },
    {
      key: "preview_every_nth",
      type: "int32",
      default: 5,
      propargs: { min: 1 },
      visible: "submission",
      description: "The preview pass renders every Nth frame of the range (1: every frame)",
    },
    {
      key: "preview_resolution_percentage",
      type: "int32",
      default: 25,
      propargs: { min: 1, max: 100 },
      visible: "submission",
      description: "Resolution of the preview pass, in percent of the scene's",
    },
    {
      key: "preview_samples",
      type: "int32",
      default: 8,
      propargs: { min: 1 },
      visible: "submission",
      description: "Render samples of the preview pass (Cycles and EEVEE)",
    },
    {
      key: "render_output_root",
      type: "string",
      subtype: "dir_path",
      required: true,
      visible: "submission",
      description: "Base directory of the render output; job-specific parts are added to it",
    },
    {
      key: "add_path_components",
      type: "int32",
      required: true,
      default: 0,
      propargs: { min: 0, max: 32 },
      visible: "submission",
      description: "Number of directory names of the blend file's path to add to the output path",
    },
    {
      key: "render_output_path",
      type: "string",
      subtype: "file_path",
      editable: false,
      eval: "str(Path(abspath(settings.render_output_root), last_n_dir_parts(settings.add_path_components), jobname, '{timestamp}', '######'))",
      description: "Final file path of where render output will be saved",
    },
    {
      key: "blendfile",
      type: "string",
      required: true,
      eval: "bpy.data.filepath",
      visible: "web",
      description: "Path of the Blender file to render",
    },
    {
      key: "format",
      type: "string",
      required: true,
      eval: "C.scene.render.image_settings.file_format",
      visible: "web",
    },
    {
      key: "image_file_extension",
      type: "string",
      required: true,
      eval: "C.scene.render.file_extension",
      visible: "hidden",
      description: "File extension used when rendering images",
    },
    {
      key: "scene",
      type: "string",
      required: true,
      eval: "C.scene.name",
      visible: "web",
      description: "Name of the scene to render",
    },
  ],
};

const VIDEO_FORMATS = ["FFMPEG", "AVI_RAW", "AVI_JPEG"];

// Always add the file extension and never write placeholder files, whatever the blend file says.
// The final pass never overwrites frames that exist; the preview pass always does.
const FINAL_OVERRIDES =
  "import bpy; render = bpy.context.scene.render; render.use_file_extension = True; render.use_overwrite = False; render.use_placeholder = False";

function previewOverrides(settings) {
  const samples = settings.preview_samples;
  return (
    "import bpy; scene = bpy.context.scene; render = scene.render; " +
    "render.use_file_extension = True; render.use_overwrite = True; render.use_placeholder = False; " +
    `render.resolution_percentage = ${settings.preview_resolution_percentage}; ` +
    `cycles = getattr(scene, 'cycles', None); cycles and setattr(cycles, 'samples', ${samples}); ` +
    `eevee = getattr(scene, 'eevee', None); eevee and setattr(eevee, 'taa_render_samples', ${samples})`
  );
}

function compileJob(job) {
  const settings = job.settings;
  if (VIDEO_FORMATS.indexOf(settings.format) >= 0) {
    throw `This job type only renders images, and not "${settings.format}"`;
  }
  const renderOutput = renderOutputPath(job);
  // Kept, so the final pass (compiled later, on approval) writes to the same place.
  settings.render_output_path = renderOutput;
  const previewDir = path.join(path.dirname(renderOutput), "preview");
  const previewOutput = path.join(previewDir, path.basename(renderOutput));
  const every = settings.preview_every_nth;
  const picked = frameChunker(settings.frames, 1).filter((_, index) => index % every === 0);
  for (const chunk of frameChunker(picked.join(","), settings.chunk_size)) {
    job.addTask(renderTask(`preview-${chunk}`, settings, previewOverrides(settings), previewOutput, chunk));
  }
}

// The approval gate: defining this function makes every job of this type wait for approval
// once the tasks of compileJob are done; it authors the final pass.
function compileApproved(job) {
  const settings = job.settings;
  for (const chunk of frameChunker(settings.frames, settings.chunk_size)) {
    const task = renderTask(`render-${chunk}`, settings, FINAL_OVERRIDES, settings.render_output_path, chunk);
    task.setFrames(chunk);
    job.addTask(task);
  }
}

function renderOutputPath(job) {
  const template = job.settings.render_output_path;
  if (!template) {
    throw (
      'setting "render_output_path" is missing: pass where the frames go, e.g. ' +
      '"<render_output_root>/<job name>/{timestamp}/######"'
    );
  }
  return template.replace(/{([^}]+)}/g, (match, name) =>
    name === "timestamp" ? formatTimestampLocal(job.created) : match,
  );
}

function renderTask(name, settings, overrides, output, chunk) {
  const task = author.Task(name, "blender");
  const args = [
    "--scene", settings.scene,
    "--python-expr", overrides,
    "--render-output", output,
    "--render-format", settings.format,
    "--render-frame", chunk.replaceAll("-", ".."),
  ];
  task.addCommand(
    author.Command(
      "blender-render",
      { exe: "{blender}", exeArgs: "{blenderArgs}", argsBefore: [], blendfile: settings.blendfile, args: args },
      frameCount(chunk),
    ),
  );
  return task;
}
