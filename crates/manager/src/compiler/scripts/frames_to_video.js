// Frames to Video: encodes an existing image sequence (rendered earlier, or by another tool) into
// a video with FFmpeg. One task; the worker expands the glob, since a job-type script never
// reads the file system.

const JOB_TYPE = {
  label: "Frames to Video",
  description: "Encode an image sequence into a video file with FFmpeg",
  settings: [
    {
      key: "input_glob",
      type: "string",
      subtype: "file_path",
      required: true,
      description: "The images, as a glob; sorted by name they give the frame order, e.g. /render/shot/*.png",
    },
    {
      key: "output_file",
      type: "string",
      subtype: "file_path",
      required: true,
      description: "The video file to write, e.g. /render/shot/shot.mp4",
    },
    {
      key: "fps",
      type: "float",
      default: 24,
      propargs: { min: 0.001 },
      description: "Frames per second of the video",
    },
    {
      key: "output_args",
      type: "string",
      default: "-c:v h264 -crf 20 -g 18 -vf pad=ceil(iw/2)*2:ceil(ih/2)*2 -pix_fmt yuv420p -y",
      description: "FFmpeg arguments between the input and the output file (codec, quality, filters)",
    },
  ],
};

function compileJob(job) {
  const settings = job.settings;
  if (!(settings.fps > 0)) {
    throw `fps must be more than 0, got ${settings.fps}`;
  }
  const task = author.Task("encode-video", "ffmpeg");
  task.addCommand(
    author.Command("frames-to-video", {
      exe: "{ffmpeg}",
      exeArgs: "",
      fps: settings.fps,
      inputGlob: settings.input_glob,
      outputFile: settings.output_file,
      argsBefore: [],
      args: shellSplit(settings.output_args),
    }),
  );
  job.addTask(task);
}
