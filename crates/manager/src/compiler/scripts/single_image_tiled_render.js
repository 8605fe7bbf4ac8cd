// Single Image Tiled Render: one big still rendered as a grid of tiles, each tile a border render
// on its own worker, then merged into one image by FFmpeg.
//
// Each tile is rendered at full resolution without cropping (`use_crop_to_border = False`) as an
// RGBA PNG, so the pixels outside the tile's border are fully transparent. Overlaying all tiles
// on top of each other therefore gives the whole image, whatever rounding Blender applies to the
// border edges, and the merge needs no knowledge of the image size.

const JOB_TYPE = {
  label: "Single Image Tiled Render",
  description: "Render one frame as a grid of tiles on several workers, then merge the tiles",
  settings: [
    {
      key: "frame",
      type: "int32",
      required: true,
      eval: "C.scene.frame_current",
      evalInfo: { showLinkButton: true, description: "Current frame" },
      propargs: { min: 0 },
      description: "The frame to render",
    },
    {
      key: "tiles_x",
      type: "int32",
      default: 2,
      propargs: { min: 1, max: 16 },
      visible: "submission",
      description: "Number of tile columns",
    },
    {
      key: "tiles_y",
      type: "int32",
      default: 2,
      propargs: { min: 1, max: 16 },
      visible: "submission",
      description: "Number of tile rows",
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
      subtype: "dir_path",
      editable: false,
      eval: "str(Path(abspath(settings.render_output_root), last_n_dir_parts(settings.add_path_components), jobname, '{timestamp}'))",
      description: "Directory the tiles and the merged image are written to",
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
      key: "scene",
      type: "string",
      required: true,
      eval: "C.scene.name",
      visible: "web",
      description: "Name of the scene to render",
    },
  ],
};

const MAX_TILES_PER_SIDE = 16;

function compileJob(job) {
  const settings = job.settings;
  for (const key of ["tiles_x", "tiles_y"]) {
    const tiles = settings[key];
    if (!(tiles >= 1 && tiles <= MAX_TILES_PER_SIDE)) {
      throw `${key} must be between 1 and ${MAX_TILES_PER_SIDE}, got ${tiles}`;
    }
  }
  if (settings.frame < 0) {
    throw `frame must be 0 or more, got ${settings.frame}`;
  }

  const outputDir = outputDirectory(job);
  settings.render_output_path = outputDir;
  const tileDir = path.join(outputDir, "tiles");
  const frameName = String(settings.frame).padStart(4, "0");

  const tileFiles = [];
  const tileTasks = [];
  for (let row = 1; row <= settings.tiles_y; row++) {
    for (let column = 1; column <= settings.tiles_x; column++) {
      const name = `tile-${column}-${row}`;
      // Blender appends the frame number (4 digits at least) and the extension.
      tileFiles.push(path.join(tileDir, `${name}-${frameName}.png`));
      const task = author.Task(`render-${name}`, "blender");
      task.addCommand(
        author.Command(
          "blender-render",
          {
            exe: "{blender}",
            exeArgs: "{blenderArgs}",
            argsBefore: [],
            blendfile: settings.blendfile,
            args: (settings.scene ? ["--scene", settings.scene] : []).concat([
              "--python-expr", borderExpression(column, row, settings.tiles_x, settings.tiles_y),
              "--render-output", path.join(tileDir, `${name}-`),
              "--render-frame", String(settings.frame),
            ]),
          },
          1,
        ),
      );
      tileTasks.push(task);
      job.addTask(task);
    }
  }

  const stem = path.stem(settings.blendfile).replace(".flamenco", "");
  const merged = path.join(outputDir, `${stem}-${frameName}.png`);
  const merge = author.Task("merge", "ffmpeg");
  merge.addCommand(
    author.Command("ffmpeg", {
      exe: "{ffmpeg}",
      exeArgs: "",
      args: mergeArgs(tileFiles, merged),
    }),
  );
  for (const task of tileTasks) {
    merge.addDependency(task);
  }
  job.addTask(merge);
}

function outputDirectory(job) {
  const template = job.settings.render_output_path;
  if (!template) {
    throw (
      'setting "render_output_path" is missing: pass the folder the tiles and the image go to, as ' +
      'the Blender add-on computes it: "<render_output_root>/<last add_path_components folders of ' +
      'the blend file>/<job name>/{timestamp}" (the dashboard\'s Submit page fills it in)'
    );
  }
  return template.replace(/{([^}]+)}/g, (match, name) =>
    name === "timestamp" ? formatTimestampLocal(job.created) : match,
  );
}

// Python run by Blender before rendering: render only this tile's region, uncropped, as RGBA
// PNG. Row 1 is the top row; Blender's border y runs from the bottom.
function borderExpression(column, row, columns, rows) {
  const minX = (column - 1) / columns;
  const maxX = column / columns;
  const minY = 1 - row / rows;
  const maxY = 1 - (row - 1) / rows;
  return [
    "import bpy",
    "render = bpy.context.scene.render",
    "render.use_border = True",
    "render.use_crop_to_border = False",
    `render.border_min_x = ${minX}`,
    `render.border_max_x = ${maxX}`,
    `render.border_min_y = ${minY}`,
    `render.border_max_y = ${maxY}`,
    "render.image_settings.file_format = 'PNG'",
    "render.image_settings.color_mode = 'RGBA'",
    "render.use_file_extension = True",
    "render.use_overwrite = True",
    "render.use_placeholder = False",
  ].join("; ");
}

// FFmpeg: every tile an input, overlaid one after the other onto the first.
function mergeArgs(tileFiles, merged) {
  const inputs = [];
  for (const file of tileFiles) {
    inputs.push("-i", file);
  }
  if (tileFiles.length === 1) {
    return inputs.concat(["-frames:v", "1", "-update", "1", "-y", merged]);
  }
  const steps = [];
  let previous = "[0:v]";
  for (let index = 1; index < tileFiles.length; index++) {
    const label = index === tileFiles.length - 1 ? "[merged]" : `[m${index}]`;
    steps.push(`${previous}[${index}:v]overlay=format=rgb${label}`);
    previous = label;
  }
  return inputs.concat([
    "-filter_complex", steps.join(";"),
    "-map", "[merged]",
    "-frames:v", "1",
    "-update", "1",
    "-y", merged,
  ]);
}
