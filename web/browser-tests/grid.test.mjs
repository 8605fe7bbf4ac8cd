// The dashboard's grid view against a real manager in headless Chromium: a real worker
// renders a tiny Blender job, the grid shows its image, and a second render (a requeue
// after the scene changed size) swaps the card's image live, without a reload; the job's
// task grid shows its tasks. Then 500 jobs: every card present, filled by three requests,
// and the time to the first grid printed (for docs/benchmarks.md, not asserted).
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import path from "node:path";
import { blenderRenderSettings, browserTestFile, makeScene, until } from "./farm.mjs";

let browser;
let page;

// Each test starts its own farm; all are stopped after the file.
const { session, browserTest } = browserTestFile({ ready: (started) => ({ browser, page } = started) });

/// The loaded image of the grid card of `jobId`: {src, width, height}, or null.
function cardImage(jobId) {
  return page.evaluate((id) => {
    const img = document.querySelector(`[data-testid=grid-card][data-job-id="${id}"] img`);
    return img?.complete && img.naturalWidth > 0 ? { src: img.src, width: img.naturalWidth, height: img.naturalHeight } : null;
  }, jobId);
}

const cardText = (jobId, testId) =>
  page.locator(`[data-testid=grid-card][data-job-id="${jobId}"] [data-testid=${testId}]`).textContent();

browserTest("the grid shows a job's last-rendered image and swaps it live when a new render lands", async () => {
  const farm = await session.startFarm({ workers: 1 });
  const blend = path.join(farm.dir, "grid.blend");
  await makeScene(blend, { width: 64, height: 48, adaptiveSampling: false, frameRange: [1, 1] });
  const outRoot = path.join(farm.dir, "renders");
  const job = await farm.submit("grid render", "simple-blender-render", 
    blenderRenderSettings({ frames: "1", blendfile: blend, outRoot, outName: "grid" }));
  const other = await farm.submit("waiting job", "echo-sleep-test", { message: "hi", sleep_duration_seconds: 0, sleep_repeats: 1 }, { initial_status: "paused" });
  const completed = async () => (await farm.api("GET", `/api/v3/jobs/${job.id}`)).status === "completed";
  await until("the first render to complete", completed, 180_000, 200);

  // From the Jobs page to its grid view.
  await page.goto(`${farm.url}/jobs`);
  await page.getByTestId("grid-view-link").click();
  await page.waitForURL(/\/grid$/);
  const first = await until("the rendered image on the job's card", () => cardImage(job.id), 20_000);
  assert.deepEqual([first.width, first.height], [64, 48], "the first render's size");
  assert.equal(new URL(first.src).origin, new URL(farm.url).origin, "served by the manager");
  const [listed] = (await farm.api("GET", `/api/v3/jobs/last-rendered-images?ids=${job.id}`)).images;
  assert.equal(new URL(first.src).pathname, listed.image, "the image the REST API names");
  assert.equal(new URL(first.src).searchParams.get("v"), listed.updated, "cache-busted by its update time");
  assert.equal((await cardText(job.id, "status")).trim(), "completed");
  assert.match(await page.locator(`[data-testid=grid-card][data-job-id="${job.id}"] .progress-text`).textContent(), /2\/2/);
  // The paused job has no image yet: a placeholder holds its place.
  await page.locator(`[data-testid=grid-card][data-job-id="${other.id}"] [data-testid=grid-placeholder]`).waitFor();

  await until("the event stream", async () => (await page.getByTestId("connection").textContent()).trim() === "live", 10_000);
  // Marks this document: a reload would lose it, so the new image must come in live.
  await page.evaluate(() => (window.__sameDocument = true));
  // The scene changes size and the job renders again (its old frame removed: Blender does
  // not overwrite frames): a new image, told by an event.
  await makeScene(blend, { width: 80, height: 60, adaptiveSampling: false, frameRange: [1, 1] });
  rmSync(path.join(outRoot, "grid", "000001.png"));
  await farm.api("POST", `/api/v3/jobs/${job.id}/setstatus`, { status: "requeueing", reason: "grid test" });
  const second = await until("the new render on the card", async () => {
    const shown = await cardImage(job.id);
    return shown && shown.width === 80 ? shown : null;
  }, 180_000, 100);
  assert.equal(second.height, 60);
  assert.notEqual(second.src, first.src, "a new cache-buster");
  await until("the job's card shows it completed again", async () => (await cardText(job.id, "status")).trim() === "completed" && (await completed()), 180_000, 100);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");

  // The status filter keeps the matching cards only.
  await page.getByTestId("grid-status-filter").getByRole("button", { name: "paused", exact: true }).click();
  await until("only the paused job", async () => {
    const ids = await page.locator("[data-testid=grid-card]").evaluateAll((cards) => cards.map((c) => c.dataset.jobId));
    return ids.length === 1 && ids[0] === other.id;
  }, 10_000);
  await browser.screenshot("grid-jobs");

  // The job's tasks as a grid; clicking a job card leads to the job.
  await page.getByTestId("grid-status-filter").getByRole("button", { name: "paused", exact: true }).click();
  await page.locator(`[data-testid=grid-card][data-job-id="${job.id}"]`).click();
  await page.waitForURL(new RegExp(`/jobs/${job.id}$`));
  await page.getByTestId("task-grid-link").click();
  await page.waitForURL(new RegExp(`/jobs/${job.id}/grid$`));
  const tasks = await farm.tasks(job.id);
  await until("a card per task", async () => (await page.locator("[data-testid=task-grid-card]").count()) === tasks.length, 10_000);
  for (const task of tasks) {
    const card = page.locator(`[data-testid=task-grid-card][data-task-id="${task.id}"]`);
    assert.equal((await card.locator("[data-testid=status]").textContent()).trim(), "completed");
    assert.match(await card.locator(".progress-text").textContent(), /100%/);
  }
  // The render task's card shows its frame (the video task renders none).
  const render = tasks.find((task) => task.task_type === "blender");
  assert.ok(render, `a blender task among ${tasks.map((t) => t.task_type)}`);
  const frameImage = await until("the render task's frame image", () =>
    page.evaluate((id) => {
      const img = document.querySelector(`[data-testid=task-grid-card][data-task-id="${id}"] img`);
      return img?.complete && img.naturalWidth > 0 ? { width: img.naturalWidth, src: img.src } : null;
    }, render.id), 10_000);
  assert.equal(frameImage.width, 80, "the newest render of frame 1");
  assert.match(
    await page.locator(`[data-testid=task-grid-card][data-task-id="${render.id}"] .progress-text`).textContent(),
    /frame 1/,
  );
  await browser.screenshot("grid-tasks");
});

browserTest("500 jobs: every card on the grid from three requests, and how long the first grid takes", async () => {
  const farm = await session.startFarm();
  const JOBS = 500;
  const settings = { message: "grid", sleep_duration_seconds: 0, sleep_repeats: 1 };
  let next = 0;
  // A few submissions at a time, as a busy studio's tools would.
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < JOBS) {
        const n = next++;
        await farm.submit(`grid job ${String(n).padStart(3, "0")}`, "echo-sleep-test", settings, { initial_status: "paused" });
      }
    }),
  );

  const apiRequests = [];
  const onRequest = (request) => {
    const url = new URL(request.url());
    if (url.pathname.startsWith("/api/v3/") && url.pathname !== "/api/v3/events") apiRequests.push(url.pathname);
  };
  page.on("request", onRequest);
  try {
    await page.goto(`${farm.url}/grid`);
    await until(`${JOBS} cards`, async () => (await page.locator("[data-testid=grid-card]").count()) === JOBS, 60_000, 100);
    const rendered = await until("the grid's render mark", () =>
      page.evaluate(() => performance.getEntriesByName("castanet:grid-rendered")[0]?.startTime ?? null), 10_000);
    assert.equal((await page.getByTestId("grid-count").textContent()).trim(), `${JOBS} job(s)`);
    // One list, one task-counts and one images request fill the grid: none per card.
    const gridRequests = apiRequests.filter((p) => p.startsWith("/api/v3/jobs"));
    assert.deepEqual(gridRequests.sort(), ["/api/v3/jobs", "/api/v3/jobs/last-rendered-images", "/api/v3/jobs/task-counts"]);
    console.log(`grid of ${JOBS} jobs: first render ${Math.round(rendered)} ms after navigation start`);
    await browser.screenshot("grid-500");
  } finally {
    page.off("request", onRequest);
  }
});
