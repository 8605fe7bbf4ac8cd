// FFmpeg Transcode: transcodes one file, or every file matched by a glob, with free-form FFmpeg
// output arguments. The script never reads the file system (a job must compile the same way
// wherever it is checked), so a glob is handed to the worker as one `ffmpeg-each` task, while a
// single file becomes one `ffmpeg` task whose full command line is known here.

const JOB_TYPE = {
  label: "FFmpeg Transcode",
  description: "Transcode a video file, or every file matched by a glob, with FFmpeg",
  settings: [
    {
      key: "input",
      type: "string",
      subtype: "file_path",
      required: true,
      description: "The file to transcode, or a glob such as /footage/day1/*.mov",
    },
    {
      key: "output_pattern",
      type: "string",
      subtype: "file_path",
      required: true,
      description:
        "Output file; {stem} is the input's name without extension, {ext} its extension, e.g. /out/{stem}.mp4",
    },
    {
      key: "output_args",
      type: "string",
      default: "-c:v libx264 -crf 20 -pix_fmt yuv420p -c:a aac",
      description: "FFmpeg arguments between the input and the output file (codecs, filters)",
    },
    {
      key: "input_args",
      type: "string",
      default: "",
      description: "FFmpeg arguments before -i (e.g. -ss 10)",
    },
  ],
};

const GLOB_CHARACTERS = /[*?[]/;

function compileJob(job) {
  const settings = job.settings;
  const inputArgs = shellSplit(settings.input_args);
  const outputArgs = withOverwriteChoice(shellSplit(settings.output_args));

  if (GLOB_CHARACTERS.test(settings.input)) {
    if (settings.output_pattern.indexOf("{stem}") < 0) {
      throw "output_pattern must contain {stem} when input is a glob, or every file would be written to the same output";
    }
    const task = author.Task("transcode", "ffmpeg");
    task.addCommand(
      author.Command("ffmpeg-each", {
        exe: "{ffmpeg}",
        exeArgs: "",
        inputGlob: settings.input,
        inputArgs: inputArgs,
        outputArgs: outputArgs,
        outputPattern: settings.output_pattern,
      }),
    );
    job.addTask(task);
    return;
  }

  const output = outputFor(settings.input, settings.output_pattern);
  if (output === settings.input) {
    throw `output_pattern makes the output the same file as the input (${output})`;
  }
  const task = author.Task(`transcode-${path.basename(settings.input)}`, "ffmpeg");
  task.addCommand(
    author.Command("ffmpeg", {
      exe: "{ffmpeg}",
      exeArgs: "",
      args: inputArgs.concat(["-i", settings.input], outputArgs, [output]),
    }),
  );
  job.addTask(task);
}

// FFmpeg asks on the terminal before overwriting unless told; workers have no terminal.
function withOverwriteChoice(args) {
  return args.indexOf("-y") >= 0 || args.indexOf("-n") >= 0 ? args : args.concat(["-y"]);
}

// The same substitution the worker does for `ffmpeg-each`.
function outputFor(input, pattern) {
  const name = path.basename(input);
  const dot = name.lastIndexOf(".");
  const stem = dot > 0 ? name.slice(0, dot) : name;
  const ext = dot > 0 ? name.slice(dot + 1) : "";
  return pattern.replaceAll("{stem}", stem).replaceAll("{ext}", ext);
}
