// Simple Blender Render: renders a frame range in chunks, one Blender process per chunk, then
// (when FFmpeg can read the output) encodes the frames into a preview video.
// Settings and task graph follow Flamenco 3.x's built-in of the same name, so the Blender add-on
// shows the same form and jobs compile to the same tasks.

const JOB_TYPE = {
  label: "Simple Blender Render",
  description: "Render a sequence of frames, and create a preview video file",
  settings: [
    // Shown in the add-on when submitting.
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

    // Filled in automatically by the add-on, shown in the web interface.
    {
      key: "blendfile",
      type: "string",
      required: true,
      eval: "bpy.data.filepath",
      visible: "web",
      description: "Path of the Blender file to render",
    },
    {
      key: "fps",
      type: "float",
      eval: "C.scene.render.fps / C.scene.render.fps_base",
      visible: "hidden",
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
      key: "has_previews",
      type: "bool",
      required: false,
      eval: "C.scene.render.image_settings.use_preview",
      visible: "hidden",
      description: "Whether Blender renders preview images next to the frames",
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

// Blender writes these as one video file; this job type renders image sequences only.
const VIDEO_FORMATS = ["FFMPEG", "AVI_RAW", "AVI_JPEG"];

// FFmpeg cannot read these; the preview video then needs Blender's JPEG previews.
const FFMPEG_UNREADABLE_FORMATS = new Set([
  "EXR",
  "MULTILAYER",
  "OPEN_EXR",
  "OPEN_EXR_MULTILAYER",
]);

// Run inside Blender before rendering: always add the file extension, never overwrite frames
// that exist and never write placeholder files, whatever the blend file says.
const RENDER_OVERRIDES =
  "import bpy; render = bpy.context.scene.render; render.use_file_extension = True; render.use_overwrite = False; render.use_placeholder = False";

function compileJob(job) {
  const settings = job.settings;
  if (VIDEO_FORMATS.indexOf(settings.format) >= 0) {
    throw `This job type only renders images, and not "${settings.format}"`;
  }

  const renderOutput = renderOutputPath(job);
  // Keep the path actually used, so the job shows where its frames went.
  settings.render_output_path = renderOutput;

  const renderDir = path.dirname(renderOutput);
  // With a target task duration the manager regroups the frames as they render
  // (compileChunk below); it starts from single frames.
  const chunkSize = job.targetTaskSeconds ? 1 : settings.chunk_size;
  const renderTasks = frameChunker(settings.frames, chunkSize).map((chunk) =>
    authorRenderTask(settings, renderDir, renderOutput, chunk),
  );
  for (const task of renderTasks) {
    job.addTask(task);
  }

  const videoTask = authorPreviewVideoTask(settings, renderDir);
  if (videoTask) {
    for (const task of renderTasks) {
      videoTask.addDependency(task);
    }
    job.addTask(videoTask);
  }
}

// The render output path with `{timestamp}` filled in; other `{…}` (variables) stay.
function renderOutputPath(job) {
  const template = job.settings.render_output_path;
  if (!template) {
    throw (
      'setting "render_output_path" is missing: pass where the frames go, as the Blender add-on ' +
      'computes it: "<render_output_root>/<last add_path_components folders of the blend file>/' +
      '<job name>/{timestamp}/######" (the dashboard\'s Submit page fills it in)'
    );
  }
  return template.replace(/{([^}]+)}/g, (match, name) =>
    name === "timestamp" ? formatTimestampLocal(job.created) : match,
  );
}

// Adaptive chunking: the render task of one regrouped frame range. `job.settings` are as
// compileJob left them, so the output path already has its timestamp.
function compileChunk(job, frames) {
  const renderOutput = job.settings.render_output_path;
  return authorRenderTask(job.settings, path.dirname(renderOutput), renderOutput, frames);
}

function authorRenderTask(settings, renderDir, renderOutput, chunk) {
  const scene = settings.scene;
  const outputArg = path.join(renderDir, path.basename(renderOutput));
  const task = author.Task(`render-${chunk}`, "blender");
  task.setFrames(chunk);
  const frames = chunk.replaceAll("-", ".."); // Blender's range notation
  // Written out twice rather than concatenated: this runs once per chunk, up to 100,000 times.
  const args = scene
    ? ["--scene", scene,
       "--python-expr", RENDER_OVERRIDES,
       "--render-output", outputArg,
       "--render-format", settings.format,
       "--render-frame", frames]
    : ["--python-expr", RENDER_OVERRIDES,
       "--render-output", outputArg,
       "--render-format", settings.format,
       "--render-frame", frames];
  const command = author.Command(
    "blender-render",
    {
      exe: "{blender}",
      exeArgs: "{blenderArgs}",
      argsBefore: [],
      blendfile: settings.blendfile,
      args: args,
    },
    frameCount(chunk),
  );
  task.addCommand(command);
  return task;
}

function authorPreviewVideoTask(settings, renderDir) {
  const needsPreviews = FFMPEG_UNREADABLE_FORMATS.has(settings.format);
  if (needsPreviews && !settings.has_previews) {
    print("no preview video: FFmpeg cannot read", settings.format, "and there are no previews");
    return null;
  }
  if (!settings.fps) {
    print("no preview video: the frame rate is not known");
    return null;
  }

  const stem = path.stem(settings.blendfile).replace(".flamenco", "");
  const [first, last] = firstAndLastFrame(settings.frames);
  const extension = needsPreviews ? ".jpg" : settings.image_file_extension;

  const task = author.Task("preview-video", "ffmpeg");
  task.addCommand(
    author.Command("frames-to-video", {
      exe: "ffmpeg",
      fps: settings.fps,
      inputGlob: path.join(renderDir, `*${extension}`),
      outputFile: path.join(renderDir, `${stem}-${first}-${last}.mp4`),
      args: [
        "-c:v", "h264",
        "-crf", "20",
        "-g", "18",
        "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-pix_fmt", "yuv420p",
        "-r", String(settings.fps),
        "-y", // never let FFmpeg ask whether to overwrite
      ],
    }),
  );
  return task;
}

// frameChunker sorts and de-duplicates, so one chunk holding every frame starts with the first
// frame and ends with the last.
function firstAndLastFrame(frames) {
  const all = frameChunker(frames, frameCount(frames))[0];
  const numbers = all.split(/[-,]/);
  return [numbers[0], numbers[numbers.length - 1]];
}
