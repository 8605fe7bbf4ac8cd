// Scheduling in the dashboard against a real manager with a licence pool and a real worker, in
// headless Chromium: a job submitted from the Submit page with a dependency, a licence and a
// worker limit waits for the job it depends on, shows its limits and dependencies, and runs
// once that job completed; the jobs list shows the waiting status and a finish estimate.
import assert from "node:assert/strict";
import { browserTestFile, until } from "./farm.mjs";

let farm;
let browser;
let page;

const { browserTest } = browserTestFile({
  farm: { workers: 1, config: "[resources]\nlicence = 2" },
  ready: (session) => ({ farm, browser, page } = session),
});

browserTest("a job submitted with a dependency, a licence and a worker limit waits, then runs", async () => {
  const first = await farm.submit("first", "echo-sleep-test", { message: "first", sleep_duration_seconds: 0, sleep_repeats: 1 }, { initial_status: "paused" });

  await page.goto(`${farm.url}/submit/echo-sleep-test`);
  await page.locator("input[name=__name]").fill("second");
  await page.locator("[data-setting=message] input").fill("after the first");
  await page.locator("[data-setting=sleep_repeats] input").fill("2");
  await page.locator("[data-setting=sleep_duration_seconds] input").fill("0");
  const scheduling = page.getByTestId("scheduling");
  await scheduling.getByTestId("depends-on").fill(first.id);
  await scheduling.getByTestId("pool-licence").fill("1");
  await scheduling.getByTestId("max-workers").fill("1");
  await browser.screenshot("submit-scheduling");
  await page.getByTestId("submit").click();
  await page.waitForURL(/\/jobs\/[0-9a-f-]{36}$/);
  const secondId = page.url().split("/").pop();

  const stored = await farm.api("GET", `/api/v3/jobs/${secondId}`);
  assert.equal(stored.status, "waiting-for-dependencies");
  assert.deepEqual(stored.depends_on, [first.id]);
  assert.deepEqual(stored.limits, { resources: { licence: 1 }, max_workers: 1 });
  await until("the limits shown", async () => /licence × 1/.test(await page.getByTestId("job-limits").textContent()));
  const dependencies = page.getByTestId("job-dependencies");
  await until("the dependency listed with its status", async () => {
    const text = await dependencies.textContent();
    return text.includes("first") && text.includes("paused");
  });
  await browser.screenshot("job-waiting");

  await page.goto(`${farm.url}/jobs`);
  await until("the waiting status in the list", async () =>
    (await page.locator("[data-testid=status]", { hasText: "waiting-for-dependencies" }).count()) === 1);

  // Resuming the first job lets both run, the second only after the first completed.
  await farm.api("POST", `/api/v3/jobs/${first.id}/setstatus`, { status: "queued", reason: "go" });
  await until("both jobs completed", async () => {
    const a = await farm.api("GET", `/api/v3/jobs/${first.id}`);
    const b = await farm.api("GET", `/api/v3/jobs/${secondId}`);
    return a.status === "completed" && b.status === "completed";
  }, 30_000, 100);
  await until("the list shows both completed", async () =>
    (await page.locator("[data-testid=status]", { hasText: "completed" }).count()) === 2);
});
