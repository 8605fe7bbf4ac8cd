// Two dashboard features against a real manager and a real worker, in headless Chromium: the
// sleep-schedule editor on the Workers page (what is entered is what the manager stores, and
// what the page shows after a reload; a bad entry is refused and changes nothing), and the
// live "last rendered" image on the Job page while a tiny Blender render runs.
import assert from "node:assert/strict";
import path from "node:path";
import { blenderRenderSettings, browserTestFile, makeScene, until } from "./farm.mjs";

let farm;
let browser;
let page;
let worker;

/// Tests that leave a screenshot of the page behind when they fail.
const { browserTest } = browserTestFile({
  farm: { workers: 1 },
  ready: async (session) => {
    ({ farm, browser, page } = session);
    [worker] = (await farm.api("GET", "/api/v3/worker-mgt/workers")).workers;
  },
});

const DAYS = ["mo", "tu", "we", "th", "fr", "sa", "su"];
const schedulePath = () => `/api/v3/worker-mgt/workers/${worker.id}/sleep-schedule`;

const timeInput = (editor, label) => editor.locator("label", { hasText: new RegExp(`^\\s*${label}\\b`) }).locator("input[type=time]");

/// What the editor shows: {is_active, days_of_week, start_time, end_time}, days in week order.
async function editorShows(editor) {
  const days = [];
  for (const day of DAYS) {
    if (await editor.locator(`input[type=checkbox][value=${day}]`).isChecked()) days.push(day);
  }
  return {
    is_active: await editor.getByLabel("sleep on schedule").isChecked(),
    days_of_week: days.join(" "),
    start_time: await timeInput(editor, "from").inputValue(),
    end_time: await timeInput(editor, "until").inputValue(),
  };
}

async function enterSchedule(editor, { is_active, days, start, end }) {
  await editor.getByLabel("sleep on schedule").setChecked(is_active);
  for (const day of DAYS) await editor.locator(`input[type=checkbox][value=${day}]`).setChecked(days.includes(day));
  await timeInput(editor, "from").fill(start);
  await timeInput(editor, "until").fill(end);
}

browserTest("set a worker's sleep schedule in the editor; the manager stores it and a reload shows it", async () => {
  assert.equal(await farm.api("GET", schedulePath()), null, "no schedule before the test");
  // Overnight (end before start: the manager keeps it as entered) on days that are neither
  // yesterday, today nor tomorrow here, so the schedule does not put the worker to sleep now.
  const today = (new Date().getDay() + 6) % 7; // 0 = Monday, as DAYS
  const days = DAYS.filter((_, n) => ![today - 1, today, today + 1].some((near) => (near + 7) % 7 === n));
  const wanted = { is_active: true, days_of_week: days.join(" "), start_time: "21:30", end_time: "06:45" };

  await page.goto(`${farm.url}/workers`);
  // The editor reads the (absent) schedule before anything is entered.
  const read = page.waitForResponse((r) => r.url().endsWith("/sleep-schedule") && r.request().method() === "GET");
  await page.getByRole("link", { name: worker.name }).click();
  await page.waitForURL(new RegExp(`/workers/${worker.id}$`));
  assert.equal((await read).status(), 204);
  const editor = page.getByTestId("sleep-schedule");
  assert.deepEqual(await editorShows(editor), { is_active: false, days_of_week: "", start_time: "", end_time: "" });
  await enterSchedule(editor, { is_active: true, days, start: "21:30", end: "06:45" });
  await editor.getByRole("button", { name: "Save schedule" }).click();
  await page.getByTestId("notifications").getByText("Sleep schedule saved").waitFor();
  assert.deepEqual(await farm.api("GET", schedulePath()), wanted, "the manager stores what was entered");
  const { status } = await farm.api("GET", `/api/v3/worker-mgt/workers/${worker.id}`);
  assert.equal(status, "awake", "the schedule does not cover now");

  await page.reload();
  await editor.waitFor();
  await until("the stored schedule in the editor after a reload", async () =>
    JSON.stringify(await editorShows(editor)) === JSON.stringify(wanted), 10_000);
  await browser.screenshot("sleep-schedule");

  // An incomplete time ("--:30"): the browser refuses to submit the form and says why; the
  // manager is not asked and the stored schedule stays.
  const posts = [];
  const onRequest = (request) => {
    if (request.method() === "POST" && request.url().endsWith("/sleep-schedule")) posts.push(request.url());
  };
  page.on("request", onRequest);
  const start = timeInput(editor, "from");
  await start.focus();
  await page.keyboard.press("Backspace");
  assert.equal(await start.inputValue(), "", "an incomplete time has no value");
  await editor.getByRole("button", { name: "Save schedule" }).click();
  assert.match(await start.evaluate((input) => input.validationMessage), /valid value/);
  assert.equal(await editor.locator("input:invalid").count(), 1);
  assert.deepEqual(await farm.api("GET", schedulePath()), wanted, "the incomplete time stored nothing");
  assert.deepEqual(posts, [], "the manager was not asked");
  page.off("request", onRequest);

  // A bad entry: sleeping from 08:00 until 08:00 would never sleep. The manager refuses it,
  // the notification area says why, and the stored schedule stays as it was.
  await enterSchedule(editor, { is_active: true, days: ["sa"], start: "08:00", end: "08:00" });
  await editor.getByRole("button", { name: "Save schedule" }).click();
  const refusal = page.locator("[data-testid=notifications] [data-kind=error]");
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /start_time and end_time are both 08:00: the schedule would never sleep/);
  assert.deepEqual(await farm.api("GET", schedulePath()), wanted, "the refused entry stored nothing");
  // The editor reads the stored schedule again.
  await until("the stored schedule back in the editor", async () =>
    JSON.stringify(await editorShows(editor)) === JSON.stringify(wanted), 10_000);
  await browser.screenshot("sleep-schedule-refused");
  // The browser reports the refused request (400); nothing else may go wrong.
  const refused = /status of 400/;
  assert.equal(browser.consoleErrors.filter((text) => refused.test(text)).length, 1);
  browser.consoleErrors.splice(0, browser.consoleErrors.length, ...browser.consoleErrors.filter((t) => !refused.test(t)));
});


browserTest("the job page shows the last rendered frame live, without a reload", async () => {
  const blend = path.join(farm.dir, "tiny.blend");
  // 64×48, one frame, as crates/castanet/tests/render.rs renders.
  await makeScene(blend, { adaptiveSampling: false, frameRange: [1, 1] });
  const outRoot = path.join(farm.dir, "renders");
  // Paused on submission: the page is open before anything renders; the user resumes it there.
  const job = await farm.submit("tiny render", "simple-blender-render", 
    blenderRenderSettings({ frames: "1", blendfile: blend, outRoot, outName: "tiny" }), { initial_status: "paused" });

  await page.goto(`${farm.url}/jobs/${job.id}`);
  const preview = page.getByTestId("last-rendered");
  await preview.getByText("Nothing rendered yet.").waitFor();
  await until("the event stream", async () => (await page.getByTestId("connection").textContent()).trim() === "live", 10_000);
  // Marks this document: a reload would lose it, so the image must come in live.
  await page.evaluate(() => (window.__sameDocument = true));
  assert.equal(await farm.api("GET", `/api/v3/jobs/${job.id}/last-rendered`), null, "nothing rendered yet");
  await page.locator("[data-action=resume]").click();

  const shown = await until("the rendered frame on the page", () =>
    page.evaluate(() => {
      const img = document.querySelector("[data-testid=last-rendered] img");
      return img?.complete && img.naturalWidth > 0
        ? { src: img.src, width: img.naturalWidth, height: img.naturalHeight }
        : null;
    }), 180_000, 200);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");
  assert.deepEqual([shown.width, shown.height], [64, 48], "the frame's size");
  // Served by the manager, where its API says the job's preview is.
  const info = await farm.api("GET", `/api/v3/jobs/${job.id}/last-rendered`);
  const src = new URL(shown.src);
  assert.equal(src.origin, new URL(farm.url).origin);
  assert.equal(src.pathname, `${info.base}/${info.suffixes[0]}`);
  const image = await fetch(src);
  assert.equal(image.status, 200);
  const bytes = new Uint8Array(await image.arrayBuffer());
  assert.deepEqual([...bytes.subarray(0, 2)], [0xff, 0xd8], "a JPEG");

  await until("the render job to complete", async () => (await farm.api("GET", `/api/v3/jobs/${job.id}`)).status === "completed", 180_000, 200);
  // The rest of the page follows live too.
  await until("the job shown completed", async () =>
    (await page.locator("h1 [data-testid=status]").first().textContent()).trim() === "completed", 10_000, 100);
  await until("the progress shown 2/2", async () => /2\/2/.test(await page.locator(".progress-text").first().textContent()), 10_000, 100);
  assert.equal(await page.evaluate(() => window.__sameDocument), true, "no reload");
  await browser.screenshot("job-last-rendered");
});
