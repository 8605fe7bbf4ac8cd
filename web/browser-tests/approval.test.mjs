// The approval gate in the dashboard, against a real manager and worker in headless Chromium:
// a gated job that finished its preview pass stands out in the job list (its own status chip
// and badge); approving it from its Job page queues the final pass, whose tasks appear and run;
// rejecting needs a comment (said before anything is sent), and the comment stays with the
// rejected job — after a reload and in the API. An on-complete command given on the Submit page
// (a mistake in it shown at the field) runs after the final pass.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { browserTestFile, until } from "./farm.mjs";

// A gated job type that is quick to run: the preview pass is one echo, the final pass an echo
// per frame.
const GATED_ECHO = `
const JOB_TYPE = {
  label: "Gated Echo",
  description: "One preview echo, then after approval an echo per frame",
  settings: [{ key: "frames", type: "string", required: true }],
};
function echoTask(name) {
  const task = author.Task(name, "misc");
  task.addCommand(author.Command("exec", { exe: "/bin/echo", args: [name] }));
  return task;
}
function compileJob(job) {
  job.addTask(echoTask("preview"));
}
function compileApproved(job) {
  for (const frame of frameChunker(job.settings.frames, 1)) job.addTask(echoTask("final-" + frame));
}
`;

let farm;
let browser;
let page;

const { browserTest } = browserTestFile({
  farm: { workers: 1, scripts: { "gated_echo.js": GATED_ECHO } },
  ready: (session) => ({ farm, browser, page } = session),
});

async function awaitingJob(name) {
  const job = await farm.submit(name, "gated-echo", { frames: "1-3" });
  await until(`${name} awaiting approval`, async () =>
    (await farm.api("GET", `/api/v3/jobs/${job.id}`)).status === "awaiting-approval");
  return job;
}

browserTest("approving from the dashboard queues the final pass", async () => {
  const job = await awaitingJob("approve me");
  // The job list: a filter chip of its own, and the badge says it.
  await page.goto(`${farm.url}/jobs`);
  await page.getByTestId("status-filter").getByText("awaiting-approval", { exact: true }).click();
  const row = page.locator("tr", { hasText: "approve me" });
  await row.locator(".status-awaiting-approval").waitFor();
  await browser.screenshot("jobs-awaiting-approval");

  await page.goto(`${farm.url}/jobs/${job.id}`);
  const panel = page.getByTestId("approval-panel");
  await panel.waitFor();
  assert.equal(await panel.getAttribute("data-state"), "pending");
  await panel.getByTestId("approval-comment").fill("lighting is fine");
  await browser.screenshot("job-awaiting-approval");
  await panel.getByTestId("approve").click();

  // The final pass: an echo per frame, appended after the preview and run by the worker.
  await until("the final pass in the task list", async () =>
    Number(await page.getByTestId("tasks-table").getAttribute("data-total")) === 4);
  const names = (await farm.tasks(job.id)).map((task) => task.name);
  assert.deepEqual(names, ["preview", "final-1", "final-2", "final-3"]);
  await until("the job completed", async () => (await farm.api("GET", `/api/v3/jobs/${job.id}`)).status === "completed");
  await until("the verdict shown", async () =>
    /Approved\s+by anonymous/.test(await panel.getByTestId("approval-verdict").textContent()));
  assert.equal((await panel.getByTestId("approval-verdict-comment").textContent()).trim(), "lighting is fine");
  await browser.screenshot("job-approved");
});

browserTest("rejecting needs a comment, and the comment stays with the job", async () => {
  const job = await awaitingJob("reject me");
  await page.goto(`${farm.url}/jobs/${job.id}`);
  const panel = page.getByTestId("approval-panel");
  await panel.getByTestId("reject").click();
  assert.match(await panel.getByTestId("approval-refusal").textContent(), /needs a comment/);
  assert.equal((await farm.api("GET", `/api/v3/jobs/${job.id}`)).status, "awaiting-approval", "nothing was sent");

  await panel.getByTestId("approval-comment").fill("The cube is too dark; light it from the left.");
  // Open access: the reviewer names themself, and that name is kept with the verdict.
  await panel.getByTestId("approval-reviewer").fill("Supervisor Sam");
  await panel.getByTestId("reject").click();
  await until("the rejection shown", async () => (await panel.getAttribute("data-state")) === "rejected");
  await page.reload();
  const comment = page.getByTestId("approval-panel").getByTestId("approval-verdict-comment");
  await comment.waitFor();
  assert.equal((await comment.textContent()).trim(), "The cube is too dark; light it from the left.");
  assert.match(await page.getByTestId("approval-verdict").textContent(), /Rejected\s+by Supervisor Sam/);
  await page.locator("h1 .status-rejected").waitFor();
  const stored = await farm.api("GET", `/api/v3/jobs/${job.id}`);
  assert.equal(stored.status, "rejected");
  assert.equal(stored.approval.comment, "The cube is too dark; light it from the left.");
  assert.equal(stored.approval.by, "Supervisor Sam");
  assert.equal((await farm.tasks(job.id)).length, 1, "no final pass for a rejected job");
  await browser.screenshot("job-rejected");
});

browserTest("an on-complete command from the Submit page runs after the approved final pass", async () => {
  const marker = path.join(farm.dir, "review server", "delivered.txt");
  await page.goto(`${farm.url}/submit/gated-echo`);
  await page.locator("input[name=__name]").fill("deliver me");
  await page.locator("[data-setting=frames] input").fill("1-2");
  const command = page.getByTestId("on-complete-command");
  await command.fill("sh -c 'mkdir -p \"$(dirname \"$1\")\"; echo \"$CASTANET_JOB_NAME\" > \"$1\" on-complete");
  await page.getByTestId("submit").click();
  await page.locator('[data-error="onComplete"]', { hasText: "unterminated single quote" }).waitFor();
  await command.fill(`sh -c 'mkdir -p "$(dirname "$1")"; echo "$CASTANET_JOB_NAME" > "$1"' on-complete '${marker}'`);
  await browser.screenshot("submit-on-complete");
  await page.getByTestId("submit").click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const jobId = page.url().split("/").pop();

  const panel = page.getByTestId("approval-panel");
  await until("the review asked for", async () => (await panel.getAttribute("data-state")) === "pending" &&
    (await panel.getByTestId("approve").count()) === 1);
  assert.match(await panel.getByTestId("on-complete").textContent(), /^sh -c /);
  assert.ok(!existsSync(marker), "nothing delivered before the final pass");
  await panel.getByTestId("approve").click();
  await until("the job completed", async () => (await farm.api("GET", `/api/v3/jobs/${jobId}`)).status === "completed");
  const names = (await farm.tasks(jobId)).map((task) => task.name);
  assert.deepEqual(names, ["preview", "final-1", "final-2", "on-complete"]);
  assert.equal(readFileSync(marker, "utf8"), "deliver me\n");
});
