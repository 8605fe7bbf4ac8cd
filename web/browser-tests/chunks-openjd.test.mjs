// Adaptive chunking and Open Job Description templates in the dashboard, against a real
// manager and worker in headless Chromium: a Blender render submitted from the Submit page
// with a target task duration shows the target on its Job page and the frames of its tasks;
// an open Job page shows the manager's regrouped chunks without a reload; an OpenJD
// template pasted into the Submit page becomes a job with a task per frame, and what the
// manager refuses (a missing parameter, job environments) is shown under the form.
import assert from "node:assert/strict";
import { browserTestFile, until } from "./farm.mjs";

// A job type that opts into adaptive chunking: each frame sleeps half a second.
const CHUNKED_SLEEP = `
const JOB_TYPE = {
  label: "Chunked Sleep",
  description: "Sleeps half a second per frame, in chunks the manager may regroup",
  settings: [{ key: "frames", type: "string", required: true }],
};
function sleepTask(frames) {
  const task = author.Task("sleep-" + frames, "misc");
  task.setFrames(frames);
  task.addCommand(author.Command("exec", { exe: "sh", args: ["-c", "sleep " + frameCount(frames) * 0.5] }));
  return task;
}
function compileJob(job) {
  for (const chunk of frameChunker(job.settings.frames, 1)) job.addTask(sleepTask(chunk));
}
function compileChunk(job, frames) {
  return sleepTask(frames);
}
`;

const ECHO_TEMPLATE = `specificationVersion: jobtemplate-2023-09
name: Echo frames
parameterDefinitions:
- name: Greeting
  type: STRING
steps:
- name: Echo
  parameterSpace:
    taskParameterDefinitions:
    - name: Frame
      type: INT
      range: "1-3"
  script:
    actions:
      onRun:
        command: /bin/echo
        args: ["{{Param.Greeting}}", "{{Task.Param.Frame}}"]
`;

const ENVIRONMENT_TEMPLATE = `specificationVersion: jobtemplate-2023-09
name: With an environment
jobEnvironments:
- name: Setup
  script:
    actions:
      onEnter:
        command: /bin/true
steps:
- name: Echo
  script:
    actions:
      onRun:
        command: /bin/echo
        args: ["hi"]
`;

/// What Chromium logs for each answer the manager refused on purpose.
const REFUSED = /status of 400/;

let farm;
let browser;
let page;

const { browserTest } = browserTestFile({
  farm: { workers: 1, scripts: { "chunked_sleep.js": CHUNKED_SLEEP } },
  ready: (session) => ({ farm, browser, page } = session),
});

/// Console errors other than the refused requests; clears them.
function takeUnexpectedConsoleErrors() {
  const unexpected = browser.consoleErrors.filter((text) => !REFUSED.test(text));
  browser.consoleErrors.splice(0);
  return unexpected;
}

browserTest("a render with a target task duration shows the target and each task's frames", async () => {
  await page.goto(`${farm.url}/submit/simple-blender-render`);
  const setting = (key) => page.locator(`[data-setting=${key}] input`);
  await page.locator("input[name=__name]").fill("adaptive render");
  await setting("frames").fill("1-3");
  await setting("render_output_root").fill("/tmp/castanet-web-render");
  await setting("blendfile").fill("/tmp/castanet-web-render/scene.blend");
  const target = page.getByTestId("target-task-minutes");
  assert.match(
    await page.getByTestId("target-task-minutes-hint").textContent(),
    /instead of a fixed chunk size: starts from single frames and regroups the queued\s+frames as they render/,
  );
  // Not together with preview first: refused before it is sent.
  await target.fill("5");
  await page.getByTestId("preview-every").fill("2");
  await page.getByTestId("submit").click();
  await page.locator('[data-error="targetMinutes"]', { hasText: "preview first" }).waitFor();
  await page.getByTestId("preview-every").fill("");
  // Paused: the frames are only to be shown, not rendered.
  await page.locator("input[name=__paused]").check();
  await browser.screenshot("submit-target-task-minutes");
  await page.getByTestId("submit").click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const jobId = page.url().split("/").pop();

  const stored = await farm.api("GET", `/api/v3/jobs/${jobId}`);
  assert.equal(stored.target_task_minutes, 5);
  await until("the target shown", async () =>
    (await page.getByTestId("job-chunking").textContent()).trim() === "Adaptive chunks, target 5 min");
  const frameCells = page.locator('[data-task-id] [data-column="frames"]');
  await until("the frames of the three single-frame chunks", async () => {
    const shown = (await frameCells.allTextContents()).map((text) => text.trim()).filter(Boolean);
    return JSON.stringify(shown) === JSON.stringify(["1", "2", "3"]);
  });
  const firstChunk = (await farm.tasks(jobId)).find((task) => task.frames === "1");
  assert.ok(firstChunk, "the manager lists the chunk of frame 1");
  await page.locator(`[data-task-id="${firstChunk.id}"]`).click();
  await until("the frames in the task panel", async () =>
    (await page.getByTestId("task-frames").textContent()).trim() === "1");
  await browser.screenshot("job-adaptive-chunks");
});

browserTest("an open Job page shows the regrouped chunks without a reload", async () => {
  // A minute of work in three-second tasks (a frame takes half a second): the job stays
  // active while it is regrouped, so no status change re-reads the rows.
  const frames = 120;
  const job = await farm.submit("regrouped", "chunked-sleep", { frames: `1-${frames}` }, {
    target_task_minutes: 0.05,
    initial_status: "paused",
  });
  await page.goto(`${farm.url}/jobs/${job.id}`);
  await until("a row per frame", async () =>
    Number(await page.getByTestId("tasks-table").getAttribute("data-total")) === frames);
  // Marks this document: a reload would lose it, so the rows must change live.
  await page.evaluate(() => (window.__sameDocument = true));
  await farm.api("POST", `/api/v3/jobs/${job.id}/setstatus`, { status: "queued", reason: "go" });
  await until("the job to run", async () => (await farm.api("GET", `/api/v3/jobs/${job.id}`)).status === "active");

  const shownFrames = async () =>
    (await page.locator('[data-task-id] [data-column="frames"]').allTextContents()).map((t) => t.trim());
  await until("fewer rows, some holding several frames", async () => {
    const total = Number(await page.getByTestId("tasks-table").getAttribute("data-total"));
    return total < frames && (await shownFrames()).some((text) => /^\d+-\d+$/.test(text));
  }, 20_000, 100);
  // The rows in view are the manager's current tasks, in order (it may regroup again).
  await until("the rows to match the manager's tasks", async () => {
    const shown = await shownFrames();
    const listed = (await farm.tasks(job.id)).map((task) => task.frames).slice(0, shown.length);
    return shown.length > 0 && JSON.stringify(shown) === JSON.stringify(listed);
  }, 10_000, 100);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");
  assert.equal((await farm.api("GET", `/api/v3/jobs/${job.id}`)).status, "active", "still running: no status change re-read the rows");
  await browser.screenshot("job-regrouped-chunks");
  await farm.api("POST", `/api/v3/jobs/${job.id}/setstatus`, { status: "cancel-requested", reason: "test done" });
  await until("the job canceled", async () => (await farm.api("GET", `/api/v3/jobs/${job.id}`)).status === "canceled");
});

browserTest("an OpenJD template becomes a job with a task per frame; refusals are shown", async () => {
  await page.goto(`${farm.url}/submit`);
  await page.getByTestId("openjd-chip").click();
  await page.waitForURL(/\/submit\/openjd$/);
  const form = page.getByTestId("openjd-form");
  const refusal = form.getByTestId("openjd-refusal");

  // Job environments are not supported: the manager names them.
  await form.getByTestId("openjd-template").fill(ENVIRONMENT_TEMPLATE);
  await form.getByTestId("openjd-submit").click();
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /jobEnvironments/);
  await browser.screenshot("openjd-refused-environment");

  // A parameter without a default must be given: the manager names it.
  await form.getByTestId("openjd-template").fill(ECHO_TEMPLATE);
  await form.getByTestId("openjd-submit").click();
  await until("the refusal naming the parameter", async () => /Greeting/.test(await refusal.textContent()));
  assert.deepEqual(takeUnexpectedConsoleErrors(), []);

  await form.getByTestId("parameter-name").first().fill("Greeting");
  await form.getByTestId("parameter-value").first().fill("hello");
  await form.locator("input[name=__openjd_name]").fill("echo three frames");
  await form.locator("input[name=__openjd_priority]").fill("60");
  await browser.screenshot("openjd-template");
  await form.getByTestId("openjd-submit").click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const jobId = page.url().split("/").pop();

  await until("the job's name", async () => (await page.getByTestId("job-name").textContent()).includes("echo three frames"));
  await until("three task rows", async () => (await page.locator("[data-task-id]").count()) === 3);
  const job = await farm.api("GET", `/api/v3/jobs/${jobId}`);
  assert.equal(job.type, "openjd");
  assert.equal(job.priority, 60);
  const tasks = await farm.tasks(jobId);
  assert.equal(tasks.length, 3);
  assert.ok(tasks.every((task) => task.task_type === "openjd"), JSON.stringify(tasks));
  await browser.screenshot("openjd-job");
});
