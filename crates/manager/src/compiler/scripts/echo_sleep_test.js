// Echo Sleep Test: a job type for trying out a farm without Blender or any input files.
// One task prints a message; then `sleep_repeats` tasks each wait a while. The sleep tasks only
// need the echo task to be done, so several workers can sleep at the same time.

const JOB_TYPE = {
  label: "Echo Sleep Test",
  description: "Prints a message, then sleeps in separate tasks; for testing a farm",
  settings: [
    {
      key: "message",
      type: "string",
      required: true,
      visible: "visible",
      description: "Text the echo task prints",
    },
    {
      key: "sleep_duration_seconds",
      type: "int32",
      default: 1,
      propargs: { min: 0 },
      description: "How long each sleep task waits, in seconds",
    },
    {
      key: "sleep_repeats",
      type: "int32",
      default: 1,
      propargs: { min: 0 },
      description: "How many sleep tasks to make (0: only the echo task)",
    },
  ],
};

function compileJob(job) {
  const settings = job.settings;

  const echoTask = author.Task("echo", "misc");
  echoTask.addCommand(author.Command("echo", { message: settings.message }));
  job.addTask(echoTask);

  for (let repeat = 1; repeat <= settings.sleep_repeats; repeat++) {
    const sleepTask = author.Task(`sleep-${repeat}`, "misc");
    sleepTask.addCommand(
      author.Command("sleep", { duration_in_seconds: settings.sleep_duration_seconds }),
    );
    sleepTask.addDependency(echoTask);
    job.addTask(sleepTask);
  }
}
