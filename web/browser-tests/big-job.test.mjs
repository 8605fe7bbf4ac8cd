// A job with 100,000 tasks: the job page paints its first rows and scrolls to the last
// one quickly, reading only pages of tasks (no answer is unbounded).
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { Farm, openBrowser } from "./farm.mjs";

/// Generous bound for each timing; the figures are printed for the record.
const BOUND_MS = 3000;
const FRAMES = 100_000;

let farm;
let browser;

before(async () => {
  // The debug build compiles 100,000 tasks slower than a release build: give its script time.
  farm = await Farm.start({ workers: 0, config: "script_time_limit_ms = 60000" });
  browser = await openBrowser();
});

after(async () => {
  await browser?.close();
  await farm?.stop();
});

test("a 100,000-task job opens and scrolls to its end quickly", async () => {
  const job = await farm.submit(
    "hundred thousand frames",
    "simple-blender-render",
    {
      frames: `1-${FRAMES}`,
      chunk_size: 1,
      render_output_root: "/tmp/castanet-web-render",
      add_path_components: 0,
      render_output_path: "/tmp/castanet-web-render/######",
      blendfile: "/tmp/castanet-web-render/scene.blend",
      format: "PNG",
      image_file_extension: ".png",
      scene: "Scene",
    },
    { initial_status: "paused" },
  );
  const { page } = browser;
  const largest = { url: "", bytes: 0 };
  page.on("response", async (response) => {
    if (!response.url().includes("/api/")) return;
    const body = await response.body().catch(() => Buffer.alloc(0));
    if (body.length > largest.bytes) Object.assign(largest, { url: response.url(), bytes: body.length });
  });
  // Warm up the page's scripts once, so the timing is of the job page, not of the first load.
  await page.goto(`${farm.url}/jobs`);
  await page.getByTestId("jobs-table").waitFor();

  const opened = Date.now();
  await page.getByRole("link", { name: "hundred thousand frames" }).click();
  await page.locator('[data-index="0"][data-task-id]').waitFor();
  const firstPaint = Date.now() - opened;
  const total = Number(await page.getByTestId("tasks-table").getAttribute("data-total"));
  assert.ok(total >= FRAMES, `the table knows all ${total} tasks`);

  const scrolled = Date.now();
  await page.getByTestId("virtual-viewport").evaluate((el) => (el.scrollTop = el.scrollHeight));
  await page.locator(`[data-index="${total - 1}"][data-task-id]`).waitFor();
  const scrollToEnd = Date.now() - scrolled;
  await browser.screenshot("big-job-end");

  console.log(`# 100k-task job: first paint ${firstPaint} ms, scroll to end ${scrollToEnd} ms, largest API answer ${largest.bytes} bytes`);
  assert.ok(firstPaint <= BOUND_MS, `first paint took ${firstPaint} ms`);
  assert.ok(scrollToEnd <= BOUND_MS, `scroll to the end took ${scrollToEnd} ms`);
  assert.ok(largest.bytes < 1_000_000, `${largest.url} answered ${largest.bytes} bytes`);
  const rendered = await page.locator("[data-task-id]").count();
  assert.ok(rendered < 200, `only the rows in view are in the page (${rendered})`);
  assert.deepEqual(browser.consoleErrors, [], "no console errors");
});
