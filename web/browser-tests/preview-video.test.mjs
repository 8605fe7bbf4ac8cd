// The Job page's live preview video against a real manager in headless Chromium: two real
// workers render a 4-frame Blender job while the page is open; the video panel follows the
// frames as they land (no reload), the video plays, and the frame scrubber seeks it.
import assert from "node:assert/strict";
import path from "node:path";
import { blenderRenderSettings, browserTestFile, makeScene, until } from "./farm.mjs";

const FRAMES = 4;

let browser;
let page;

// The farm starts in the test (its workers render while the page is open).
const { session, browserTest } = browserTestFile({ ready: (started) => ({ browser, page } = started) });

/// The <video> element's state.
const videoState = () =>
  page.evaluate(() => {
    const v = document.querySelector("[data-testid=preview-video]");
    return v && { readyState: v.readyState, duration: v.duration, currentTime: v.currentTime, src: v.src, error: v.error?.message ?? null };
  });

browserTest("the job page's preview video fills in live, plays, and the scrubber seeks it", async () => {
  const farm = await session.startFarm({ workers: 2, config: "[preview_video]\nmin_interval_seconds = 0.5" });
  const blend = path.join(farm.dir, "preview.blend");
  await makeScene(blend);
  const outRoot = path.join(farm.dir, "renders");
  const job = await farm.submit("preview video", "simple-blender-render", blenderRenderSettings({ frames: `1-${FRAMES}`, blendfile: blend, outRoot, outName: "preview" }));

  await page.goto(`${farm.url}/jobs/${job.id}`);
  await until("the event stream", async () => (await page.getByTestId("connection").textContent()).trim() === "live", 10_000);
  await page.evaluate(() => (window.__sameDocument = true));
  // The panel appears with the first frame and counts up as the others land.
  await until(
    "all frames in the video on the open page",
    async () => {
      const count = page.getByTestId("preview-video-count");
      return (await count.count()) > 0 && (await count.textContent()).trim() === `${FRAMES} of ${FRAMES} frames rendered`;
    },
    180_000,
    200,
  );
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");

  const info = await farm.api("GET", `/api/v3/jobs/${job.id}/preview-video`);
  const loaded = await until("the video's metadata", async () => {
    const state = await videoState();
    assert.equal(state?.error ?? null, null, "the video decodes");
    return state && state.readyState >= 1 && state.src.endsWith(info.url) ? state : null;
  }, 20_000);
  assert.ok(Math.abs(loaded.duration - FRAMES / 24) < 0.01, `${FRAMES} frames at 24 fps: ${loaded.duration} s`);

  // play() resolves and time moves on.
  await page.evaluate(() => document.querySelector("[data-testid=preview-video]").play());
  await until("playback to advance", async () => (await videoState()).currentTime > 0, 10_000);

  // The scrubber goes by frame number: frame 3 is the third frame's time.
  await page.getByTestId("preview-video-scrubber").evaluate((input) => {
    input.value = "3";
    input.dispatchEvent(new Event("input", { bubbles: true }));
  });
  await until("the video at frame 3", async () => {
    const { currentTime } = await videoState();
    return Math.floor(currentTime * 24) === 2;
  }, 10_000);
  assert.equal((await page.getByTestId("preview-video-frame").textContent()).trim(), "3");
  await browser.screenshot("preview-video");
});
