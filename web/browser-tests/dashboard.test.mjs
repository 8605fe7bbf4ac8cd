// The dashboard against a real manager with two real workers, in headless Chromium: the
// acceptance flows of the dashboard, with a screenshot of each page in web/test-artifacts/.
import assert from "node:assert/strict";
import { browserTestFile, until } from "./farm.mjs";

// A job type whose tasks always fail, so workers get blocklisted (threshold 1 below).
const FAIL_TEST = `
const JOB_TYPE = { label: "Fail Test", description: "Tasks that fail, for the blocklist", settings: [] };
function compileJob(job) {
  for (let n = 1; n <= 2; n++) {
    const task = author.Task("fail-" + n, "misc");
    task.addCommand(author.Command("exec", { exe: "sh", args: ["-c", "echo failing on purpose; exit 3"] }));
    job.addTask(task);
  }
}
`;

let farm;
let browser;
let page;

/// Tests that leave a screenshot of the page behind when they fail.
const { browserTest } = browserTestFile({
  farm: { workers: 2, config: "blocklist_threshold = 1", scripts: { "fail_test.js": FAIL_TEST } },
  ready: (session) => ({ farm, browser, page } = session),
});

const statusOf = (selector) => page.locator(selector).first().textContent();
const jobStatus = () => statusOf("h1 [data-testid=status]");

async function waitForText(what, read, wanted, ms = 60_000) {
  await until(`${what} to be ${wanted}`, async () => {
    const text = (await read())?.trim();
    return Array.isArray(wanted) ? wanted.includes(text) : text === wanted;
  }, ms, 100);
}

async function cancelJob(jobId) {
  await farm.api("POST", `/api/v3/jobs/${jobId}/setstatus`, { status: "cancel-requested", reason: "test cleanup" });
  await until("the job to be canceled", async () => (await farm.api("GET", `/api/v3/jobs/${jobId}`)).status === "canceled");
}

browserTest("submit a Blender render from the Submit page: the form computes what the add-on would", async () => {
  await page.goto(`${farm.url}/submit`);
  await page.getByRole("link", { name: "Simple Blender Render" }).click();
  await page.waitForURL(/\/submit\/simple-blender-render$/);
  const setting = (key) => page.locator(`[data-setting=${key}] input`);
  await page.locator("input[name=__name]").fill("web render");
  await setting("frames").fill("1-3");
  await setting("render_output_root").fill("/srv/renders");
  await setting("add_path_components").fill("1");
  await setting("blendfile").fill("/projects/film/scene.blend");
  // Hidden in the add-on (it reads them from the scene); computed or defaulted here.
  await until("the computed output path", async () =>
    (await setting("render_output_path").inputValue()) === "/srv/renders/film/web render/{timestamp}/######");
  assert.equal(await setting("image_file_extension").inputValue(), ".png");
  assert.equal(await setting("fps").inputValue(), "24");
  await setting("format").fill("OPEN_EXR");
  await until("the extension to follow the format", async () => (await setting("image_file_extension").inputValue()) === ".exr");
  await setting("format").fill("PNG");
  // Paused: the render is not meant to run, only to be stored as the add-on would store it.
  await page.locator("input[name=__paused]").check();
  await browser.screenshot("submit-blender");
  await page.getByTestId("submit").click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const jobId = page.url().split("/").pop();
  const job = await farm.api("GET", `/api/v3/jobs/${jobId}`);
  assert.equal(job.status, "paused");
  assert.equal(job.settings.image_file_extension, ".png");
  assert.equal(job.settings.fps, 24);
  assert.equal(job.settings.scene, "Scene");
  const output = job.settings.render_output_path;
  assert.ok(output.startsWith("/srv/renders/film/web render/") && output.endsWith("/######") && !output.includes("{"), output);
  assert.equal((await farm.tasks(jobId)).length, 4, "three frames and the preview video");
  await cancelJob(jobId);
});

browserTest("submit from the Submit page and watch the job complete live", async () => {
  await page.goto(`${farm.url}/submit`);
  await page.getByRole("link", { name: "Echo Sleep Test" }).click();
  await page.waitForURL(/\/submit\/echo-sleep-test$/);
  await page.locator("input[name=__name]").fill("browser submission");
  await page.locator("[data-setting=message] input").fill("hello from the browser");
  await page.locator("[data-setting=sleep_repeats] input").fill("3");
  await page.locator("[data-setting=sleep_duration_seconds] input").fill("1");
  await browser.screenshot("submit-page");
  await page.getByTestId("submit").click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  // Marks this document: a reload would lose it, so the job must complete live.
  await page.evaluate(() => ((window).__sameDocument = true));
  await waitForText("the job's status", jobStatus, "completed");
  assert.equal(await page.evaluate(() => (window).__sameDocument), true);
  await until("four completed task rows", async () =>
    (await page.locator("[data-task-id] [data-testid=status]", { hasText: "completed" }).count()) === 4);
  assert.match(await page.locator(".progress-text").first().textContent(), /4\/4/);
  await browser.screenshot("job-detail");
});

browserTest("tail a task's log live and load the whole log", async () => {
  const job = await farm.submit("log tail", "echo-sleep-test", {
    message: "tail me",
    sleep_duration_seconds: 2,
    sleep_repeats: 1,
  });
  const tasks = await farm.tasks(job.id);
  const sleeper = tasks.find((t) => t.name === "sleep-1");
  await page.goto(`${farm.url}/jobs/${job.id}/tasks/${sleeper.id}`);
  await page.getByTestId("task-log").waitFor();
  // When the manager first has log text for the task, the page must show it within a second.
  const firstTail = await until("the sleep task's first log text", () =>
    farm.api("GET", `/api/v3/tasks/${sleeper.id}/logtail`).then((t) => (t ? t : null)), 30_000, 20);
  const seenAt = Date.now();
  const lastLine = firstTail.trim().split("\n").at(-1);
  await until("the first log line on the page", async () => (await page.getByTestId("task-log").textContent()).includes(lastLine), 5_000, 20);
  const delay = Date.now() - seenAt;
  console.log(`# log line shown ${delay} ms after the manager had it`);
  assert.ok(delay <= 1500, `the log line took ${delay} ms to show`);
  await until("the task to complete", async () => (await farm.api("GET", `/api/v3/tasks/${sleeper.id}`)).status === "completed", 30_000);
  const info = await farm.api("GET", `/api/v3/tasks/${sleeper.id}/log`);
  const whole = await farm.api("GET", info.url);
  const finalLine = whole.trim().split("\n").at(-1);
  await until("the last log line on the page", async () => (await page.getByTestId("task-log").textContent()).includes(finalLine), 5_000);
  await page.getByRole("button", { name: "Load whole log" }).click();
  await until("the whole log", async () => (await page.getByTestId("task-log").textContent()) === whole, 5_000);
  await browser.screenshot("task-log");
});

browserTest("a task's commands as stored and expanded for a worker platform", async () => {
  const job = await farm.submit("commands", "echo-sleep-test", { message: "{jobs}/shot-010", sleep_duration_seconds: 0, sleep_repeats: 1 }, { initial_status: "paused" });
  const echo = (await farm.tasks(job.id)).find((t) => t.name === "echo");
  await page.goto(`${farm.url}/jobs/${job.id}/tasks/${echo.id}`);
  const commands = page.getByTestId("task-commands");
  await commands.locator("summary").click();
  await until("the stored command", async () => (await commands.locator("pre").first().textContent()).includes("{jobs}/shot-010"));
  await commands.locator("select").selectOption("linux");
  await until("the command as a Linux worker gets it", async () => {
    const text = await commands.locator("pre").first().textContent();
    return !text.includes("{jobs}") && text.includes("/shot-010");
  });
  await browser.screenshot("task-commands");
  await cancelJob(job.id);
});

browserTest("pause and resume a job, cancel a task", async () => {
  const job = await farm.submit("pause me", "echo-sleep-test", {
    message: "pausing",
    sleep_duration_seconds: 1,
    sleep_repeats: 30,
  });
  await page.goto(`${farm.url}/jobs/${job.id}`);
  await waitForText("the job's status", jobStatus, "active");
  await page.locator("[data-action=pause]").click();
  await waitForText("the job's status", jobStatus, "paused");
  // Pausing changed the waiting tasks all at once: the rows in view show it.
  const rowStatuses = () => page.locator("[data-task-id] [data-testid=status]").allTextContents();
  await until("the waiting rows shown paused", async () => {
    const statuses = await rowStatuses();
    return statuses.includes("paused") && !statuses.includes("queued");
  }, 10_000);
  await browser.screenshot("job-paused");
  await page.locator("[data-action=resume]").click();
  await waitForText("the job's status", jobStatus, ["queued", "active"]);

  // Cancel a task that has not run yet, from its row.
  const queued = (await farm.tasks(job.id)).filter((t) => t.status === "queued").at(-1);
  const row = page.locator(`[data-task-id="${queued.id}"]`);
  await page.getByTestId("virtual-viewport").evaluate((el, index) => (el.scrollTop = index * 28 - 100), queued.index_in_job - 1);
  await row.click();
  await page.waitForURL(new RegExp(`/tasks/${queued.id}$`));
  await page.getByTestId("task-cancel").click();
  await waitForText("the task row's status", () => row.locator("[data-testid=status]").textContent(), "canceled", 10_000);
  assert.equal((await farm.api("GET", `/api/v3/tasks/${queued.id}`)).status, "canceled");
  await cancelJob(job.id);
});

browserTest("a worker told to sleep lazily finishes its task first", async () => {
  const job = await farm.submit("lazy sleep", "echo-sleep-test", {
    message: "sleepy",
    sleep_duration_seconds: 5,
    sleep_repeats: 1,
  });
  const running = await until("the sleep task to run", async () =>
    (await farm.tasks(job.id)).find((t) => t.name === "sleep-1" && t.status === "active" && t.worker), 30_000);
  const workerId = running.worker.id;
  await page.goto(`${farm.url}/workers/${workerId}`);
  await page.getByTestId("worker-panel").waitFor();
  assert.equal(await page.getByTestId("lazy").isChecked(), true);
  await page.locator("[data-testid=worker-actions] [data-status=asleep]").click();
  const row = page.locator(`tr[data-worker-id="${workerId}"]`);
  // While its task runs, the request waits and the page says so.
  const pending = await row.getByTestId("status-change").textContent({ timeout: 3_000 });
  assert.match(pending, /asleep\s+\(after task\)/);
  assert.equal((await farm.api("GET", `/api/v3/tasks/${running.id}`)).status, "active", "the task still runs");
  await waitForText("the worker's status", () => row.locator("[data-testid=status]").textContent(), "asleep", 30_000);
  const task = await farm.api("GET", `/api/v3/tasks/${running.id}`);
  assert.equal(task.status, "completed", "the task ran to its end before the worker slept");
  await until("the finished task gone from the worker's row", async () =>
    (await row.locator(".task-link").count()) === 0, 10_000);
  await browser.screenshot("workers-page");
  await page.locator("[data-testid=worker-actions] [data-status=awake]").click();
  await waitForText("the worker's status", () => row.locator("[data-testid=status]").textContent(), "awake", 30_000);
});

browserTest("remove a blocklist entry", async () => {
  const job = await farm.submit("blocklisted", "fail-test", {});
  await until("a blocklist entry", async () => (await farm.api("GET", `/api/v3/jobs/${job.id}/blocklist`)).length > 0, 60_000);
  await page.goto(`${farm.url}/jobs/${job.id}`);
  const rows = page.locator("[data-testid=blocklist] tbody tr");
  await until("the blocklist on the page", async () => (await rows.count()) > 0, 10_000);
  const before = (await farm.api("GET", `/api/v3/jobs/${job.id}/blocklist`)).length;
  const shown = await rows.count();
  await browser.screenshot("job-blocklist");
  await rows.first().getByTestId("blocklist-remove").click();
  await until("one entry fewer on the page", async () => (await rows.count()) === shown - 1, 10_000);
  assert.equal((await farm.api("GET", `/api/v3/jobs/${job.id}/blocklist`)).length, before - 1);
  await until("the fault class in the task table", async () => (await page.locator("[data-task-id] .fault").count()) > 0, 10_000);
});

browserTest("jobs page filters, selects and acts on several jobs; tags page creates a tag", async () => {
  const jobs = [];
  for (const name of ["bulk one", "bulk two"]) {
    jobs.push(await farm.submit(name, "echo-sleep-test", { message: name, sleep_duration_seconds: 1, sleep_repeats: 5 }, { initial_status: "paused" }));
  }
  await page.goto(`${farm.url}/jobs?status=paused`);
  for (const job of jobs) await page.locator(`tr[data-job-id="${job.id}"] input[type=checkbox]`).check();
  await page.locator("[data-testid=bulk-actions] button", { hasText: "Cancel" }).click();
  await until("both jobs canceled", async () => {
    const states = await Promise.all(jobs.map((j) => farm.api("GET", `/api/v3/jobs/${j.id}`)));
    return states.every((j) => j.status === "canceled");
  });
  // Filtered to paused, the page drops them live.
  await until("the canceled jobs gone from the paused filter", async () => (await page.locator(`tr[data-job-id="${jobs[0].id}"]`).count()) === 0, 10_000);
  await page.getByTestId("job-search").fill("bulk");
  await page.waitForURL(/q=bulk/);
  await page.goto(`${farm.url}/jobs`);
  await page.getByTestId("jobs-table").waitFor();
  await browser.screenshot("jobs-page");
  // The keyboard opens a job: down to the first row, enter; back returns to the list.
  await page.getByTestId("jobs-table").focus();
  await page.keyboard.press("ArrowDown");
  await page.keyboard.press("Enter");
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  await page.goBack();
  await page.waitForURL(/\/jobs$/);
  await page.goBack();
  await page.waitForURL(/status=paused/);

  // Delete both from the canceled ones; the rows go, and the manager forgets them.
  await page.goto(`${farm.url}/jobs?status=canceled`);
  for (const job of jobs) await page.locator(`tr[data-job-id="${job.id}"] input[type=checkbox]`).check();
  await page.locator("[data-testid=bulk-actions] button", { hasText: "Delete" }).click();
  await until("the deleted jobs gone from the page", async () =>
    (await page.locator(`tr[data-job-id="${jobs[0].id}"], tr[data-job-id="${jobs[1].id}"]`).count()) === 0, 20_000);
  await until("the manager to have deleted them", async () => {
    const answers = await Promise.all(jobs.map((j) => fetch(`${farm.url}/api/v3/jobs/${j.id}`)));
    return answers.every((a) => a.status === 404);
  }, 20_000);

  await page.goto(`${farm.url}/tags`);
  await page.locator("[data-testid=tag-create] input").first().fill("gpu-nodes");
  await page.getByRole("button", { name: "Create tag" }).click();
  await until("the new tag listed", async () => (await page.locator("[data-testid=tags-table] tbody tr input").first().inputValue()) === "gpu-nodes", 10_000);
  const { tags } = await farm.api("GET", "/api/v3/worker-mgt/tags");
  assert.ok(tags.some((t) => t.name === "gpu-nodes"));
  await browser.screenshot("tags-page");
});

browserTest("the page reconnects after a manager restart, without a reload", async () => {
  await page.goto(`${farm.url}/jobs`);
  await page.getByTestId("jobs-table").waitFor();
  await waitForText("the event stream", () => page.getByTestId("connection").textContent(), "live", 10_000);
  await page.evaluate(() => ((window).__sameDocument = true));
  await farm.restartManager();
  const job = await farm.submit("after the restart", "echo-sleep-test", { message: "back", sleep_duration_seconds: 0, sleep_repeats: 1 });
  await waitForText("the event stream", () => page.getByTestId("connection").textContent(), "live", 20_000);
  await until("the new job on the page", async () => (await page.locator(`tr[data-job-id="${job.id}"]`).count()) === 1, 20_000);
  assert.equal(await page.evaluate(() => (window).__sameDocument), true);
  // While the manager was away the browser logged its failed connections; nothing else.
  const outage = /ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|Failed to load resource/;
  const others = browser.consoleErrors.filter((text) => !outage.test(text));
  browser.consoleErrors.splice(0, browser.consoleErrors.length, ...others);
});

browserTest("the admin panel shows the registration secret and rotates it", async () => {
  await page.goto(`${farm.url}/jobs`);
  await page.getByRole("link", { name: "Admin" }).click();
  await page.waitForURL(/\/admin$/);
  const shown = page.getByTestId("secret-value");
  const before = await farm.api("GET", "/api/v3/registration-secret");
  assert.equal(before.secret, farm.secret);
  // Hidden until asked for; then the manager's secret.
  await shown.waitFor();
  assert.ok(!(await shown.textContent()).includes(farm.secret));
  await page.getByRole("button", { name: "Show" }).click();
  await until("the secret shown", async () => (await shown.textContent()) === farm.secret, 5_000);
  assert.match(await page.getByTestId("secret-origin").textContent(), /config file/);

  // The confirmation dialog is accepted (farm.mjs); the new secret replaces the old one.
  await page.getByRole("button", { name: "Rotate" }).click();
  await until("a new secret shown", async () => (await shown.textContent()) !== farm.secret, 10_000);
  const after = await farm.api("GET", "/api/v3/registration-secret");
  assert.notEqual(after.secret, before.secret);
  assert.equal(await shown.textContent(), after.secret);
  assert.match(await page.getByTestId("secret-origin").textContent(), /Rotated/);
  await page.getByTestId("notifications").getByText("Registration secret rotated").waitFor();
  // The rotation is in the audit log on the same page.
  await page.getByTestId("audit-table").getByText("POST /api/v3/registration-secret/rotate").first().waitFor();
  await browser.screenshot("admin-page");
});

browserTest("a worker's self-check problems show on its page", async () => {
  // Runs no task type any job here uses, so it takes no work from the other tests.
  const missing = `${farm.dir}/not-mounted`;
  // An earlier test may have rotated the registration secret.
  farm.secret = (await farm.api("GET", "/api/v3/registration-secret")).secret;
  const child = farm.startWorker("web-unmounted", ["--task-types", "file-management", "--storage-root", missing]);
  const worker = await until("the unmounted worker signed on", async () => {
    const { workers } = await farm.api("GET", "/api/v3/worker-mgt/workers");
    return workers.find((w) => w.name === "web-unmounted" && w.connected);
  });
  await page.goto(`${farm.url}/workers/${worker.id}`);
  const problems = page.getByTestId("self-check-problems");
  await problems.waitFor();
  assert.match(await problems.textContent(), /not-mounted is not there \(is the shared storage mounted\?\)/);
  await browser.screenshot("worker-self-check");
  child.kill("SIGTERM");
});

browserTest("a worker without shared storage shows its storage and its transfers", async () => {
  farm.secret = (await farm.api("GET", "/api/v3/registration-secret")).secret;
  const child = farm.startWorker("web-no-shared", ["--no-shared-storage"]);
  const worker = await until("the worker without shared storage signed on", async () => {
    const { workers } = await farm.api("GET", "/api/v3/worker-mgt/workers");
    return workers.find((w) => w.name === "web-no-shared" && w.connected);
  });
  // A job only this worker may take: its tag is the job's.
  const tag = await farm.api("POST", "/api/v3/worker-mgt/tags", { name: "no-shared-storage" });
  await farm.api("POST", `/api/v3/worker-mgt/workers/${worker.id}/settags`, { tag_ids: [tag.id] });
  const job = await farm.submit(
    "on the mirror",
    "echo-sleep-test",
    { message: "hello", sleep_duration_seconds: 0, sleep_repeats: 1 },
    { worker_tag: tag.id },
  );
  await until("the tagged job done", async () => (await farm.api("GET", `/api/v3/jobs/${job.id}`)).status === "completed", 60_000);
  await page.goto(`${farm.url}/workers/${worker.id}`);
  const storage = page.getByTestId("worker-storage");
  await storage.waitFor();
  assert.match(await storage.textContent(), /mirrors the farm's paths in .*mirror/);
  const transfers = page.getByTestId("worker-transfers");
  await transfers.waitFor();
  assert.match(await transfers.textContent(), /Cache hits\s*0 of 0 input files/);
  await browser.screenshot("worker-transfers");
  child.kill("SIGTERM");
});
